"""The module's models on the upstream fixtures, at the fixtures' tolerances."""
import json

import numpy as np
import pytest

import krea2
from conftest import fixture, read_safetensors, rel_l2

FORWARD_CASES = ["tiny", "small_nomask", "small_masked_batch", "sample_base_cfg", "sample_turbo"]


def tolerance(case):
    with open(fixture(case, "case.json")) as f:
        return json.load(f).get("tolerance", {}).get("rel_l2", 1e-5)


@pytest.mark.parametrize("case", ["tiny", "small_nomask", "small_masked_batch"])
def test_forward_fixture(case):
    model = krea2.Krea2Transformer2DModel.from_pretrained(fixture(case, "transformer"))
    inputs = read_safetensors(fixture(case, "inputs.safetensors"))
    expected = read_safetensors(fixture(case, "expected.safetensors"))["sample"]
    out = model(inputs["hidden_states"], inputs["encoder_hidden_states"], inputs["timestep"],
                inputs["position_ids"], encoder_attention_mask=inputs.get("encoder_attention_mask"))
    assert out.dtype == np.float32 and out.shape == expected.shape
    assert rel_l2(out, expected) <= tolerance(case)
    # diffusers' return conventions
    assert rel_l2(model(inputs["hidden_states"], inputs["encoder_hidden_states"], inputs["timestep"],
                        inputs["position_ids"], inputs.get("encoder_attention_mask"),
                        return_dict=True).sample, out) == 0
    assert isinstance(model(inputs["hidden_states"], inputs["encoder_hidden_states"], inputs["timestep"],
                            inputs["position_ids"], inputs.get("encoder_attention_mask"),
                            return_dict=False), tuple)


def test_forward_accepts_other_dtypes():
    """Integer position ids, float64 latents and a bool mask are converted, as torch would take them."""
    case = "small_masked_batch"
    model = krea2.Krea2Transformer2DModel.from_pretrained(fixture(case, "transformer"))
    i = read_safetensors(fixture(case, "inputs.safetensors"))
    expected = read_safetensors(fixture(case, "expected.safetensors"))["sample"]
    out = model(i["hidden_states"].astype(np.float64), i["encoder_hidden_states"], i["timestep"],
                i["position_ids"].astype(np.int64), encoder_attention_mask=i["encoder_attention_mask"])
    assert rel_l2(out, expected) <= 1e-5


def test_lora_fixture():
    case = "small_lora"
    model = krea2.Krea2Transformer2DModel.from_pretrained(fixture(case, "transformer"))
    i = read_safetensors(fixture(case, "inputs.safetensors"))
    e = read_safetensors(fixture(case, "expected.safetensors"))
    args = (i["hidden_states"], i["encoder_hidden_states"], i["timestep"], i["position_ids"],
            i["encoder_attention_mask"])
    name = model.load_lora_weights(fixture(case, "lora", "pytorch_lora_weights.safetensors"), adapter_name="a")
    assert name == "a" and model.get_active_adapters() == ["a"]
    assert rel_l2(model(*args), e["sample_lora_scale_1"]) <= 1e-5
    assert rel_l2(model(*args, attention_kwargs={"scale": 0.5}), e["sample_lora_scale_0.5"]) <= 1e-5
    model.set_adapters(["a"], [0.5])  # the strength instead of the per-call scale
    assert rel_l2(model(*args), e["sample_lora_scale_0.5"]) <= 1e-5
    model.fuse_lora(lora_scale=2.0)  # 0.5 * 2 merged
    assert rel_l2(model(*args), e["sample_lora_scale_1"]) <= 1e-5
    model.unload_lora_weights()
    assert rel_l2(model(*args), e["sample"]) <= 1e-5
    with pytest.raises(krea2.InvalidArgument, match="no adapter named 'b'"):
        model.set_adapters("b")


def test_text_encoder_fixture():
    with open(fixture("text", "encoder_tiny", "case.json")) as f:
        cases = json.load(f)["cases"]
    encoder = krea2.TextEncoder.from_pretrained(fixture("text", "encoder_tiny", "text_encoder"),
                                                tokenizer=fixture("text", "tokenizer"))
    for name, c in cases.items():
        prompts = [p["prompt"] for p in c["prompts"]]
        embeds, mask = encoder.encode_prompt(prompts, max_sequence_length=c["max_sequence_length"])
        ref = read_safetensors(fixture("text", "encoder_tiny", c["file"]))
        np.testing.assert_array_equal(mask, ref["prompt_embeds_mask"])
        valid = ref["prompt_embeds_mask"].astype(bool)  # upstream's pad rows are never read
        assert rel_l2(embeds[valid], ref["prompt_embeds"][valid]) <= 1e-5, name


def test_vae_fixture():
    vae = krea2.Vae.from_pretrained(fixture("vae", "decoder_tiny", "vae"))
    i = read_safetensors(fixture("vae", "decoder_tiny", "inputs.safetensors"))
    e = read_safetensors(fixture("vae", "decoder_tiny", "expected.safetensors"))
    image = vae.decode(i["latents_unpacked"])
    assert rel_l2(image, e["image"]) <= 1e-5
    rgb = vae.decode(i["latents_unpacked"], output="uint8")
    diff = np.abs(rgb.astype(int) - e["image_uint8"].astype(int))
    assert diff.max() <= 1 and (diff != 0).mean() <= 0.002
    # packed latents through the module's unpacking give the same picture
    unpacked = krea2.unpack_latents(i["latents"], 80, 112)
    np.testing.assert_array_equal(unpacked[:, :, None], i["latents_unpacked"])
    np.testing.assert_array_equal(krea2.pack_latents(unpacked), i["latents"])


def test_errors_raise_with_the_library_message():
    with pytest.raises(krea2.Krea2Error, match="/nonexistent/model"):
        krea2.Krea2Transformer2DModel.from_pretrained("/nonexistent/model")
    with pytest.raises(krea2.InvalidArgument, match="compute must be"):
        krea2.Krea2Transformer2DModel.from_pretrained(fixture("tiny", "transformer"), compute="fp4")
    with pytest.raises(ValueError):  # InvalidArgument is a ValueError too
        krea2.Krea2Transformer2DModel.from_pretrained(fixture("tiny", "transformer"), isa="sse2")
    model = krea2.Krea2Transformer2DModel.from_pretrained(fixture("tiny", "transformer"))
    i = read_safetensors(fixture("tiny", "inputs.safetensors"))
    with pytest.raises(krea2.Krea2Error, match="hidden_states"):
        model(i["hidden_states"][:, :, :5], i["encoder_hidden_states"], i["timestep"], i["position_ids"])
    with pytest.raises(krea2.InvalidArgument, match="unknown keys"):
        model(i["hidden_states"], i["encoder_hidden_states"], i["timestep"], i["position_ids"],
              attention_kwargs={"sclae": 1})
    with pytest.raises(krea2.Krea2Error, match="case.json"):
        model.load_lora_weights(fixture("small_lora", "case.json"))
