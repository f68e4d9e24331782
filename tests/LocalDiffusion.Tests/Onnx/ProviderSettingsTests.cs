using LocalDiffusion.Pipeline;
using LocalDiffusion.Onnx;
using LocalDiffusion.Tests.Cli;

namespace LocalDiffusion.Tests.Onnx;

/// <summary>CUDA and TensorRT provider options: parsed, mapped to ONNX Runtime's keys, refused where they cannot apply (issue 12).</summary>
public class ProviderSettingsTests
{
    [Fact]
    public void CudaOptionsMapToOnnxRuntimeKeys()
    {
        var cuda = CudaProviderSettings.Parse("gpu_mem_limit=8GB, cudnn_conv_algo_search=heuristic,enable_cuda_graph=0,PREFER_NHWC=true");
        Assert.Equal(8L << 30, cuda.GpuMemoryLimitBytes);
        // The keys and values OrtCUDAProviderOptions.UpdateOptions takes (onnxruntime cuda_provider_options docs).
        Assert.Equal(new Dictionary<string, string>
        {
            ["device_id"] = "1", ["gpu_mem_limit"] = (8L << 30).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["cudnn_conv_algo_search"] = "HEURISTIC", ["enable_cuda_graph"] = "0", ["prefer_nhwc"] = "1",
        }, cuda.ToProviderOptions(1));
        Assert.Equal(new Dictionary<string, string> { ["device_id"] = "0" }, new CudaProviderSettings().ToProviderOptions(0));
        Assert.Equal(1536L << 20, CudaProviderSettings.Parse("gpu_mem_limit=1.5GB").GpuMemoryLimitBytes);
    }

    [Theory]
    [InlineData("gpu_mem_limit=lots", "gpu_mem_limit=lots")]
    [InlineData("gpu_mem_limit=-1GB", "gpu_mem_limit=-1GB")]
    [InlineData("cudnn_conv_algo_search=fastest", "fastest")]
    [InlineData("enable_cuda_graph=maybe", "enable_cuda_graph=maybe")]
    [InlineData("enable_cuda_graph=1", "enable_cuda_graph=1 (EnableCudaGraph) is refused")] // per-step inputs are copied to new device buffers (StepBinding)
    [InlineData("arena_extend_strategy=1", "'arena_extend_strategy' is not a CUDA option")]
    [InlineData("prefer_nhwc", "not KEY=VALUE")]
    public void BadCudaOptionsAreNamed(string text, string message)
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => CudaProviderSettings.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void TensorRtOptionsKeepCachesAndCoverTheSizesInUse()
    {
        var trt = TensorRtProviderSettings.Parse("fp16=1,sizes=512x512;768x512,max_batch=2");
        var unet = trt.ToProviderOptions(0, "unet", "/cache/tensorrt/unet-x", textWidth: 768);
        Assert.Equal("1", unet["trt_fp16_enable"]);
        Assert.Equal("1", unet["trt_engine_cache_enable"]);
        Assert.Equal("/cache/tensorrt/unet-x", unet["trt_engine_cache_path"]);
        Assert.Equal("/cache/tensorrt/unet-x", unet["trt_timing_cache_path"]);
        // Latents are an eighth of the image; the optimum is the first size with the CFG pair as one batch of 2.
        Assert.Equal("sample:1x4x64x64,timestep:1,encoder_hidden_states:1x77x768", unet["trt_profile_min_shapes"]);
        Assert.Equal("sample:2x4x64x64,timestep:2,encoder_hidden_states:2x77x768", unet["trt_profile_opt_shapes"]);
        Assert.Equal("sample:2x4x64x96,timestep:2,encoder_hidden_states:2x77x768", unet["trt_profile_max_shapes"]);
        Assert.Equal("latent_sample:2x4x64x96", trt.ToProviderOptions(0, "vae_decoder", "/c")["trt_profile_max_shapes"]);
        Assert.Equal("input_ids:2x77", trt.ToProviderOptions(0, "text_encoder", "/c")["trt_profile_max_shapes"]);

        var plain = new TensorRtProviderSettings { Fp16 = false, EngineCache = false, TimingCache = false }.ToProviderOptions(3, "unet", "/c");
        Assert.Equal("3", plain["device_id"]);
        Assert.Equal("0", plain["trt_fp16_enable"]);
        Assert.False(plain.ContainsKey("trt_engine_cache_path"));
        Assert.False(plain.ContainsKey("trt_profile_min_shapes"));
    }

    [Theory]
    [InlineData("sizes=512", "size '512'")]
    [InlineData("sizes=500x512", "multiples of 8")]
    [InlineData("max_batch=0", "max_batch=0")]
    [InlineData("int8=1", "'int8' is not a TensorRT option")]
    public void BadTensorRtOptionsAreNamed(string text, string message)
    {
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => TensorRtProviderSettings.Parse(text));
        Assert.Contains(message, e.Message);
    }

    [Theory]
    [InlineData("cpu", true, false, "CUDA options are set, but Device is 'cpu'")]
    [InlineData("directml", true, false, "CUDA options are set, but Device is 'directml'")]
    [InlineData("cuda", false, true, "TensorRT options are set, but Device is 'cuda'")]
    [InlineData("cpu", false, true, "TensorRT options are set, but Device is 'cpu'")]
    public void GpuOptionsForAnotherProviderAreRefusedBeforeLoading(string device, bool cuda, bool trt, string message)
    {
        var options = new PipelineOptions
        {
            Device = device,
            Cuda = cuda ? new CudaProviderSettings { PreferNhwc = true } : null,
            TensorRT = trt ? new TensorRtProviderSettings() : null,
        };
        // The model path does not exist: the options are checked first.
        var e = Assert.Throws<LocalDiffusion.Errors.InvalidRequestException>(() => StableDiffusionPipeline.Load("/nonexistent-model", options));
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void OnTheCpuBuildCudaIsRefusedAndAutoSaysTheOptionsWentUnused()
    {
        if (SessionFactory.AvailableProviders().Contains("CUDAExecutionProvider"))
            Assert.Skip("this ONNX Runtime build has CUDA: the CPU-build behaviour cannot be observed");
        var cuda = new CudaProviderSettings { GpuMemoryLimitBytes = 1L << 30 };
        var refused = Assert.Throws<ExecutionProviderUnavailableException>(() =>
            StableDiffusionPipeline.Load(TestModels.PathOf("tiny"), new PipelineOptions { Device = "cuda", Cuda = cuda, UseModelCache = false }));
        Assert.Contains("OnnxRuntimeFlavor=Gpu", refused.Message);

        using var auto = StableDiffusionPipeline.Load(TestModels.PathOf("tiny"),
            new PipelineOptions { Device = "auto", Cuda = cuda, TensorRT = new TensorRtProviderSettings(), UseModelCache = false });
        Assert.Equal("cpu", auto.Info.Device);
        Assert.Contains(auto.Info.DeviceNotes, n => n.Contains("CUDA/TensorRT options were not used", StringComparison.Ordinal));
    }

    [Fact]
    public void ClearingTheCacheRemovesTensorRtEnginesItMade()
    {
        using var cache = new TempDirectory();
        // The folder as AppendTensorRT makes it (with its marker); TensorRT writes its engines into it.
        var engines = ModelCache.TensorRtFolder(cache.Path, Path.Combine(TestModels.PathOf("tiny"), "unet", "model.onnx"), new ExecutionDevice(ExecutionProviderKind.TensorRT));
        File.WriteAllBytes(Path.Combine(engines, "TensorrtExecutionProvider_TRTKernel.engine"), new byte[1000]);
        File.WriteAllText(Path.Combine(cache.Path, "notes.txt"), "not the cache's");

        var result = new ModelCache(cache.Path).Clear();
        Assert.Equal([engines], result.TensorRtEngines);
        Assert.True(result.BytesFreed > 1000);
        Assert.False(Directory.Exists(Path.Combine(cache.Path, "tensorrt")));
        Assert.True(File.Exists(Path.Combine(cache.Path, "notes.txt")), "other files are left alone");
    }

    [Theory]
    [InlineData("--cuda-options", "gpu_mem_limit=lots", "gpu_mem_limit=lots is not a positive byte count")]
    [InlineData("--cuda-options", "prefer_nhwc=1", "CUDA options are set, but Device is 'cpu'")]
    [InlineData("--tensorrt-options", "sizes=500x500", "multiples of 8")]
    public async Task TheCliRefusesGpuOptionsItCannotUse(string flag, string value, string message)
    {
        using var dir = new TempDirectory();
        var (code, _, err) = await CliRunner.Run("generate", "--model", TestModels.PathOf("tiny"), "--device", "cpu",
            "--prompt", "a red circle", "--steps", "1", flag, value, "--out", Path.Combine(dir.Path, "x.png"));
        Assert.Equal(1, code); // ExitCodes.InvalidInput
        Assert.Contains(message, err);
        Assert.False(File.Exists(Path.Combine(dir.Path, "x.png")));
    }
}
