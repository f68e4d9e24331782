"""Build the tiny UNet stand-ins of other UNet variants: models/test/refused/*.onnx (the engine refuses the LCM and
SDXL ones; since 9-channel inpainting UNets are supported, the inpainting one loads and is refused for text-to-image).

    /usr/bin/python3 tools/build_refused_unets.py

Each is a few-node ONNX graph with the inputs of a UNet variant LocalDiffusion does not run yet, so the tests can
drop it into a copy of models/test/tiny as unet/model.onnx and check the error names it:
- unet-inpainting.onnx: sample [B,9,h,w] (latents + mask + masked-image latents), timestep, encoder_hidden_states;
- unet-lcm.onnx: the usual inputs plus timestep_cond [B,256] (LCM-distilled UNets);
- unet-sdxl.onnx: the usual inputs plus text_embeds [B,1280] and time_ids [B,6] (SDXL).
The output is out_sample [B,4,h,w] (the first 4 channels of sample), enough for ONNX Runtime to load the graph.
"""
import pathlib

import onnx
from onnx import TensorProto, helper

OUT = pathlib.Path(__file__).resolve().parents[1] / "models" / "test" / "refused"


def build(name: str, channels: int, extra: list) -> None:
    inputs = [
        helper.make_tensor_value_info("sample", TensorProto.FLOAT, ["batch", channels, "height", "width"]),
        helper.make_tensor_value_info("timestep", TensorProto.INT64, ["batch"]),
        helper.make_tensor_value_info("encoder_hidden_states", TensorProto.FLOAT, ["batch", 77, 32]),
        *extra,
    ]
    starts = helper.make_tensor("starts", TensorProto.INT64, [1], [0])
    ends = helper.make_tensor("ends", TensorProto.INT64, [1], [4])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    node = helper.make_node("Slice", ["sample", "starts", "ends", "axes"], ["out_sample"])
    output = helper.make_tensor_value_info("out_sample", TensorProto.FLOAT, ["batch", 4, "height", "width"])
    graph = helper.make_graph([node], name, inputs, [output], initializer=[starts, ends, axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="LocalDiffusion tools")
    model.ir_version = 8
    onnx.checker.check_model(model)
    OUT.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(OUT / name))


def main() -> None:
    build("unet-inpainting.onnx", 9, [])
    build("unet-lcm.onnx", 4, [helper.make_tensor_value_info("timestep_cond", TensorProto.FLOAT, ["batch", 256])])
    build("unet-sdxl.onnx", 4, [
        helper.make_tensor_value_info("text_embeds", TensorProto.FLOAT, ["batch", 1280]),
        helper.make_tensor_value_info("time_ids", TensorProto.FLOAT, ["batch", 6]),
    ])
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
