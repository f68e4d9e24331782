namespace LocalDiffusion.Onnx.Rewriting;

/// <summary>
/// onnx.proto's field numbers, the one copy the engine's protobuf readers and writers share (<see cref="OnnxGraph"/>, the
/// pre-load scan <c>OnnxFileScan</c>, LoRA's weight rewrite in Adapters): each group named by its message, then the field.
/// Read them with <c>using static</c>.
/// </summary>
internal static class OnnxFields
{
    /// <summary>ModelProto.</summary>
    public const int ModelIrVersion = 1, ModelGraph = 7, ModelOpsetImport = 8;

    /// <summary>OperatorSetIdProto.</summary>
    public const int OpsetDomain = 1, OpsetVersion = 2;

    /// <summary>GraphProto.</summary>
    public const int GraphNode = 1, GraphName = 2, GraphInitializer = 5, GraphInput = 11, GraphOutput = 12;

    /// <summary>NodeProto.</summary>
    public const int NodeInput = 1, NodeOutput = 2, NodeName = 3, NodeOpType = 4, NodeAttribute = 5, NodeDomain = 7;

    /// <summary>AttributeProto, and its AttributeType values.</summary>
    public const int AttributeName = 1, AttributeF = 2, AttributeI = 3, AttributeT = 5, AttributeInts = 8, AttributeType = 20;

    /// <summary>AttributeProto.AttributeType values.</summary>
    public const int AttributeTypeFloat = 1, AttributeTypeInt = 2;

    /// <summary>TensorProto.</summary>
    public const int TensorDims = 1, TensorDataType = 2, TensorFloatData = 4, TensorInt32Data = 5, TensorInt64Data = 7,
        TensorName = 8, TensorRawData = 9, TensorDoubleData = 10, TensorExternalData = 13, TensorDataLocation = 14;

    /// <summary>StringStringEntryProto (a TensorProto's external_data entries).</summary>
    public const int EntryKey = 1, EntryValue = 2;

    /// <summary>ValueInfoProto.</summary>
    public const int ValueInfoName = 1, ValueInfoType = 2;

    /// <summary>TypeProto, TypeProto.Tensor, TensorShapeProto and its Dimension.</summary>
    public const int TypeTensor = 1, TensorTypeElement = 1, TensorTypeShape = 2, ShapeDim = 1, DimParam = 2;
}
