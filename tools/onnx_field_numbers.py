"""Writes tests/LocalDiffusion.Tests/TestData/Onnx/onnx_fields.json: onnx.proto's field numbers as the onnx package's
compiled descriptors state them, for OnnxFieldsTests (the engine's one copy, LocalDiffusion.Onnx.Rewriting.OnnxFields,
must agree). Run: /usr/bin/python3 tools/onnx_field_numbers.py (Debian's python3-onnx)."""
import json
import pathlib

import onnx

# The engine's constant name -> (message, field). AttributeType values are an enum, handled below.
FIELDS = {
    "ModelIrVersion": (onnx.ModelProto, "ir_version"),
    "ModelGraph": (onnx.ModelProto, "graph"),
    "ModelOpsetImport": (onnx.ModelProto, "opset_import"),
    "OpsetDomain": (onnx.OperatorSetIdProto, "domain"),
    "OpsetVersion": (onnx.OperatorSetIdProto, "version"),
    "GraphNode": (onnx.GraphProto, "node"),
    "GraphName": (onnx.GraphProto, "name"),
    "GraphInitializer": (onnx.GraphProto, "initializer"),
    "GraphInput": (onnx.GraphProto, "input"),
    "GraphOutput": (onnx.GraphProto, "output"),
    "NodeInput": (onnx.NodeProto, "input"),
    "NodeOutput": (onnx.NodeProto, "output"),
    "NodeName": (onnx.NodeProto, "name"),
    "NodeOpType": (onnx.NodeProto, "op_type"),
    "NodeAttribute": (onnx.NodeProto, "attribute"),
    "NodeDomain": (onnx.NodeProto, "domain"),
    "AttributeName": (onnx.AttributeProto, "name"),
    "AttributeF": (onnx.AttributeProto, "f"),
    "AttributeI": (onnx.AttributeProto, "i"),
    "AttributeT": (onnx.AttributeProto, "t"),
    "AttributeInts": (onnx.AttributeProto, "ints"),
    "AttributeType": (onnx.AttributeProto, "type"),
    "TensorDims": (onnx.TensorProto, "dims"),
    "TensorDataType": (onnx.TensorProto, "data_type"),
    "TensorFloatData": (onnx.TensorProto, "float_data"),
    "TensorInt32Data": (onnx.TensorProto, "int32_data"),
    "TensorInt64Data": (onnx.TensorProto, "int64_data"),
    "TensorName": (onnx.TensorProto, "name"),
    "TensorRawData": (onnx.TensorProto, "raw_data"),
    "TensorDoubleData": (onnx.TensorProto, "double_data"),
    "TensorExternalData": (onnx.TensorProto, "external_data"),
    "TensorDataLocation": (onnx.TensorProto, "data_location"),
    "EntryKey": (onnx.StringStringEntryProto, "key"),
    "EntryValue": (onnx.StringStringEntryProto, "value"),
    "ValueInfoName": (onnx.ValueInfoProto, "name"),
    "ValueInfoType": (onnx.ValueInfoProto, "type"),
    "TypeTensor": (onnx.TypeProto, "tensor_type"),
    "TensorTypeElement": (onnx.TypeProto.Tensor, "elem_type"),
    "TensorTypeShape": (onnx.TypeProto.Tensor, "shape"),
    "ShapeDim": (onnx.TensorShapeProto, "dim"),
    "DimParam": (onnx.TensorShapeProto.Dimension, "dim_param"),
}

numbers = {name: message.DESCRIPTOR.fields_by_name[field].number for name, (message, field) in FIELDS.items()}
numbers["AttributeTypeFloat"] = onnx.AttributeProto.FLOAT
numbers["AttributeTypeInt"] = onnx.AttributeProto.INT
out = pathlib.Path(__file__).resolve().parent.parent / "tests/LocalDiffusion.Tests/TestData/Onnx/onnx_fields.json"
out.write_text(json.dumps({"onnx": onnx.__version__, "fields": numbers}, indent=1, sort_keys=True) + "\n")
print(out, len(numbers))
