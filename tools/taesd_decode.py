"""AutoencoderTiny.decode as a module of its own, for torch.onnx.export: latent_sample -> sample (diffusers' names, [-1, 1]),
the form a model folder ships its TAESD in. Shared by build_taesd_test_decoders.py (models/test/taesd/taef1),
sd15_size/build_random_taesd.py (the real-size timing TAESD) and shapes/train_taesd.py (models/shapes/taesd)."""
from torch import nn


class Decode(nn.Module):
    def __init__(self, tiny):
        super().__init__()
        self.tiny = tiny

    def forward(self, latent_sample):
        return self.tiny.decode(latent_sample).sample
