using LocalDiffusion.Denoising;
using LocalDiffusion.ControlNet;

namespace LocalDiffusion.Tests.ControlNet;

/// <summary>
/// Residual names and the residual layout of a diffusers UNet. Expected layouts are diffusers' UNet2DConditionModel
/// down path: SD 1.5 (4 levels, 2 resnets each) gives residuals at 1, 1, 1, ½, ½, ½, ¼, ¼, ¼, ⅛, ⅛, ⅛ of the latent size and
/// the mid block at ⅛; SDXL (3 levels, 2 resnets) at 1, 1, 1, ½, ½, ½, ¼, ¼, ¼ and the mid block at ¼.
/// </summary>
public class ControlResidualsTests
{
    [Theory]
    [InlineData("down_block_0_additional_residual", 0)]
    [InlineData("down_block_11_additional_residual", 11)]
    [InlineData("down_block_res_samples_3", 3)]
    [InlineData("down_block_additional_residuals.7", 7)]
    [InlineData("mid_block_additional_residual", -1)]
    [InlineData("mid_block_res_sample", -1)]
    public void NamesGiveTheirSlot(string name, int slot) => Assert.Equal(slot, ControlResiduals.Slot(name));

    [Theory]
    [InlineData("sample")]
    [InlineData("text_embeds")]
    [InlineData("down_block_1_2")]
    public void OtherNamesAreNotResiduals(string name) => Assert.Null(ControlResiduals.Slot(name));

    [Fact]
    public void HalvingsFollowDiffusersDownPath()
    {
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3, 3], ControlResiduals.Halvings(12, 4)!);
        Assert.Equal([0, 0, 0, 1, 1, 1, 2, 2, 2, 2], ControlResiduals.Halvings(9, 3)!);
        Assert.Equal([0, 0, 1, 1, 1], ControlResiduals.Halvings(4, 2)!); // models/test/tiny-controlnet
        Assert.Null(ControlResiduals.Halvings(10, 4));
        Assert.Equal(4, ControlResiduals.Halve(64, 4));
        Assert.Equal(3, ControlResiduals.Halve(10, 2)); // 10 → 5 → 3, as a stride-2 convolution with padding 1
    }
}
