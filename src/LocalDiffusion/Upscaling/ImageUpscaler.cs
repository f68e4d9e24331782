using LocalDiffusion.Imaging;
using LocalDiffusion.Onnx;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using LocalDiffusion.Errors;

namespace LocalDiffusion.Upscaling;

/// <summary>
/// An ESRGAN-family super-resolution model exported to ONNX (RRDBNet, Real-ESRGAN, SwinIR and the like: RGB in [0, 1],
/// NCHW, float32 or float16) that enlarges pictures by its scale. Large pictures run as tiles with feathered overlaps (a
/// model with a fixed input size runs tiles of that size, a smaller picture padded); alpha is enlarged separately by
/// Lanczos. One upscale runs at a time per instance.
/// </summary>
public sealed class ImageUpscaler : IDisposable
{
    private const int ProbeSize = 16;
    private readonly InferenceSession _session;
    private readonly TensorSpec _input;
    private readonly int _tile;
    private readonly int _overlap;
    private readonly SemaphoreSlim _gate = new(1, 1);

    private ImageUpscaler(string path, InferenceSession session, TensorSpec input, UpscalerOptions options)
    {
        (ModelPath, _session, _input) = (path, session, input);
        Name = Path.GetFileNameWithoutExtension(path);
        (FixedHeight, FixedWidth) = ((int?)input.FixedDimension(2), (int?)input.FixedDimension(3));
        Scale = Probe();
        // Pixel-unshuffled RRDBNets (Real-ESRGAN's ×2 and ×1) need sides divisible by 4 / scale.
        SizeMultiple = Scale switch { 1 => 4, 2 => 2, _ => 1 };
        _tile = options.TileSize / SizeMultiple * SizeMultiple;
        _overlap = (options.TileOverlap + SizeMultiple - 1) / SizeMultiple * SizeMultiple;
        // A fixed input size is the tile size; the shared band must leave each tile a middle.
        if (Math.Min(FixedWidth ?? int.MaxValue, FixedHeight ?? int.MaxValue) is var side and < int.MaxValue)
            _overlap = Math.Min(_overlap, side / 2 / SizeMultiple * SizeMultiple);
    }

    /// <summary>The model's name: its file name without <c>.onnx</c>.</summary>
    public string Name { get; }

    /// <summary>The model file.</summary>
    public string ModelPath { get; }

    /// <summary>How many times larger each side comes out (found by running the model once on a 16×16 probe).</summary>
    public int Scale { get; }

    /// <summary>Whether the model takes and returns float16.</summary>
    public bool IsFloat16 => _input.ElementType == TensorElementType.Float16;

    /// <summary>What each side of the model's input must be a multiple of (edges are padded to it, then cropped).</summary>
    internal int SizeMultiple { get; }

    /// <summary>The input width the model is fixed to (then every tile has it); null when dynamic.</summary>
    internal int? FixedWidth { get; }

    /// <summary>The input height the model is fixed to; null when dynamic.</summary>
    internal int? FixedHeight { get; }

    /// <summary>
    /// Opens an upscaler: <paramref name="path"/> is its .onnx file, or a folder holding exactly one .onnx file.
    /// </summary>
    /// <exception cref="ArgumentException">An option is out of range.</exception>
    /// <exception cref="ModelLoadException">The file is missing, not ONNX, or not an image-to-image model that enlarges; the message names it and says what was expected.</exception>
    public static ImageUpscaler Load(string path, UpscalerOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        options ??= new UpscalerOptions();
        if (options.TileSize != 0 && options.TileSize < 32)
            throw new InvalidRequestException(nameof(options.TileSize), null, null, called => $"{called} is {options.TileSize}; it must be 0 (no tiling) or at least 32 pixels.");
        if (options.TileOverlap < 0 || (options.TileSize != 0 && options.TileOverlap > options.TileSize / 2))
            throw new InvalidRequestException(nameof(options.TileOverlap), null, null, called => $"{called} is {options.TileOverlap}; it must be between 0 and half the tile size ({options.TileSize / 2}).");
        var file = ResolveFile(path);
        InferenceSession session;
        try
        {
            session = new SessionFactory(ExecutionDevice.Parse(options.Device), options.IntraOpThreads, null).Create(file);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException(file, $"ONNX Runtime cannot open it as a model ({e.Message}); an ESRGAN-family upscaler (.onnx) was expected.", e);
        }
        try
        {
            var input = Describe(file, session);
            return new ImageUpscaler(file, session, input, options);
        }
        catch
        {
            session.Dispose();
            throw;
        }
    }

    private static string ResolveFile(string path)
    {
        if (Directory.Exists(path))
        {
            var files = Directory.GetFiles(path, "*.onnx");
            return files.Length == 1 ? files[0] : throw new ModelLoadException(path,
                $"{files.Length} .onnx files in this folder; an upscaler folder holds exactly one (or name the .onnx file).");
        }
        if (!File.Exists(path))
            throw new ModelLoadException(path, "no such file or folder; an ESRGAN-family upscaler (.onnx) was expected.");
        Span<byte> head = stackalloc byte[23];
        using (var stream = File.OpenRead(path))
            head = head[..stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false)];
        if (head.SequenceEqual("version https://git-lfs"u8))
            throw new ModelLoadException(path, "this is a Git LFS pointer, not the model: run git lfs pull.");
        return path;
    }

    // One float image input [N,3,H,W] with dynamic H and W, one float image output.
    private static TensorSpec Describe(string file, InferenceSession session)
    {
        if (session.InputMetadata.Count != 1 || session.OutputMetadata.Count < 1)
            throw new ModelLoadException(file, $"{session.InputMetadata.Count} inputs and {session.OutputMetadata.Count} outputs; an upscaler takes one picture and returns one.");
        var (name, meta) = session.InputMetadata.First();
        var input = TensorSpec.FromMetadata(name, meta);
        if (input.ElementType is not (TensorElementType.Float or TensorElementType.Float16) || input.Rank != 4 || input.FixedDimension(1) is not (null or 3))
            throw new ModelLoadException(file, $"input '{name}' is {input.Describe()}; an upscaler takes float32 or float16 [batch,3,height,width] (RGB in [0, 1]).");
        if (input.FixedDimension(0) is > 1)
            throw new ModelLoadException(file, $"input '{name}' is {input.Describe()}: a fixed batch of {input.FixedDimension(0)}; an upscaler takes one picture at a time (batch 1 or dynamic).");
        var (outName, outMeta) = session.OutputMetadata.First();
        OrtTensors.RequireFloatOutput(TensorSpec.FromMetadata(outName, outMeta), file);
        return input;
    }

    // Runs a 16×16 picture (or one of the fixed input size) through the model: the output's size says the scale, whatever
    // the graph declares.
    private int Probe()
    {
        long[] shape;
        var (ph, pw) = (FixedHeight ?? ProbeSize, FixedWidth ?? ProbeSize);
        try
        {
            using var input = OrtTensors.FromFloats(_input, new float[3 * ph * pw], [1, 3, ph, pw]);
            using var run = new RunOptions();
            using var outputs = _session.Run(run, [_input.Name], [input], [_session.OutputNames[0]]);
            shape = OrtTensors.Shape(outputs[0]);
        }
        catch (OnnxRuntimeException e)
        {
            throw new ModelLoadException(ModelPath, $"running a 1x3x{ph}x{pw} picture failed ({e.Message}); an image-to-image upscaler was expected.", e);
        }
        var scale = shape is [1, 3, var h, var w] && h % ph == 0 && w == h / ph * pw ? (int)(h / ph) : 0;
        if (scale is < 1 or > 8)
            throw new ModelLoadException(ModelPath, $"a 1x3x{ph}x{pw} picture came out [{string.Join(",", shape)}]; an upscaler returns [1,3,{ph}·s,{pw}·s] with a scale s from 1 to 8.");
        return scale;
    }

    /// <summary>One pass of the model: the picture <see cref="Scale"/> times larger; alpha, if any, enlarged by Lanczos.</summary>
    /// <exception cref="OperationCanceledException">Cancelled between tiles.</exception>
    public async Task<RgbaPicture> UpscaleAsync(RgbaPicture picture, IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(picture);
        var (w, h) = (picture.Width * Scale, picture.Height * Scale);
        var chw = new float[3 * picture.Width * picture.Height];
        var plane = picture.Width * picture.Height;
        for (var p = 0; p < plane; p++)
            for (var c = 0; c < 3; c++)
                chw[c * plane + p] = picture.Rgb[3 * p + c] / 255f;
        var output = await RunAsync(chw, picture.Width, picture.Height, progress, cancellationToken).ConfigureAwait(false);
        var rgb = new byte[w * h * 3];
        var outPlane = w * h;
        for (var p = 0; p < outPlane; p++)
            for (var c = 0; c < 3; c++)
                rgb[3 * p + c] = (byte)MathF.Round(Math.Clamp(output[c * outPlane + p], 0f, 1f) * 255f);
        var alpha = picture.Alpha is null ? null : LanczosResampler.Resize(picture.Alpha, picture.Width, picture.Height, 1, w, h);
        return new RgbaPicture(w, h, rgb, alpha);
    }

    /// <summary>
    /// The picture at exactly <paramref name="width"/>×<paramref name="height"/> as AUTOMATIC1111's upscalers make it: model
    /// passes (at most three) until both sides are reached, then Pillow's Lanczos to the exact size.
    /// </summary>
    public async Task<RgbaPicture> UpscaleToAsync(RgbaPicture picture, int width, int height, IProgress<UpscaleProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(picture);
        if (width <= 0 || height <= 0)
            throw new InvalidRequestException(nameof(width), null, null, _ => $"The upscale target {width}x{height} must be positive.");
        for (var pass = 0; pass < 3 && (picture.Width < width || picture.Height < height) && Scale > 1; pass++)
            picture = await UpscaleAsync(picture, progress, cancellationToken).ConfigureAwait(false);
        return picture.ResizeLanczos(width, height);
    }

    /// <summary>The model's float output [3, h·Scale, w·Scale] for CHW input in [0, 1], tiled as the options say.</summary>
    internal async Task<float[]> RunAsync(float[] chw, int width, int height, IProgress<UpscaleProgress>? progress, CancellationToken cancellationToken)
    {
        await _gate.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            return await Task.Run(() => new UpscaleRun(this, chw, width, height).Execute(progress, cancellationToken), cancellationToken).ConfigureAwait(false);
        }
        finally
        {
            _gate.Release();
        }
    }

    /// <summary>Runs one tile [3,h,w] through the model into <paramref name="output"/> [3,h·Scale,w·Scale].</summary>
    internal void RunTile(float[] tile, int width, int height, float[] output)
    {
        using var input = OrtTensors.FromFloats(_input, tile.AsSpan(0, 3 * width * height), [1, 3, height, width]);
        using var run = new RunOptions();
        using var outputs = _session.Run(run, [_input.Name], [input], [_session.OutputNames[0]]);
        var shape = OrtTensors.Shape(outputs[0]);
        if (shape is not [1, 3, var h, var w] || h != height * Scale || w != width * Scale)
            throw new ModelLoadException(ModelPath, $"a {width}x{height} tile came out [{string.Join(",", shape)}], not [1,3,{height * Scale},{width * Scale}].");
        OrtTensors.ReadFloats(outputs[0], output.AsSpan(0, 3 * width * height * Scale * Scale));
    }

    internal int TileSize => _tile;

    internal int TileOverlap => _overlap;

    /// <inheritdoc />
    public void Dispose()
    {
        _session.Dispose();
        _gate.Dispose();
    }
}
