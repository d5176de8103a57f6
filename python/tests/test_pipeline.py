"""Krea2Pipeline: the sampler fixtures, the bundled demo pipeline, cancellation, Ctrl-C, the GIL, leaks."""
import os
import signal
import threading
import time

import numpy as np
import pytest

import krea2
from conftest import fixture, read_safetensors, rel_l2

DEMO = fixture("demo_pipeline")


@pytest.mark.parametrize("case,guidance,turbo", [("sample_base_cfg", 4.5, False), ("sample_turbo", 0.0, True)])
def test_sampler_fixture(case, guidance, turbo):
    """The diffusers denoising loop on the fixture's embeddings and noise, through the pipeline."""
    import json
    with open(fixture(case, "case.json")) as f:
        c = json.load(f)
    i = read_safetensors(fixture(case, "inputs.safetensors"))
    e = read_safetensors(fixture(case, "expected.safetensors"))
    pipe = krea2.Krea2Pipeline.from_pretrained(transformer=fixture(case, "transformer"))
    kwargs = {}
    if "negative_prompt_embeds" in i:
        kwargs = dict(negative_prompt_embeds=i["negative_prompt_embeds"],
                      negative_prompt_embeds_mask=i.get("negative_prompt_embeds_mask"))
    out = pipe(prompt_embeds=i["prompt_embeds"], prompt_embeds_mask=i.get("prompt_embeds_mask"),
               latents=i["noise"], num_inference_steps=c["num_inference_steps"],
               guidance_scale=c["guidance_scale"], turbo=c["is_distilled"], output_type="latent", **kwargs)
    assert c["guidance_scale"] == guidance and c["is_distilled"] == turbo
    assert out.images.shape == e["latents"].shape
    assert rel_l2(out.images, e["latents"]) <= c["tolerance"]["rel_l2"]


def test_demo_pipeline_outputs_agree():
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO)
    args = dict(prompt="a lighthouse at dawn", height=64, width=96, num_inference_steps=3, generator_seed=5)
    pil = pipe(**args).images
    arr = pipe(**args, output_type="np").images
    lat = pipe(**args, output_type="latent").images
    assert len(pil) == 1 and pil[0].size == (96, 64) and pil[0].mode == "RGB"
    assert arr.shape == (1, 64, 96, 3) and arr.dtype == np.float32 and 0 <= arr.min() and arr.max() <= 1
    assert lat.shape == (1, (8 // 2) * (12 // 2), 64)
    # The picture is the VAE's decode of the latents, converted as the pipeline's image processor does.
    vae = krea2.Vae.from_pretrained(os.path.join(DEMO, "vae"))
    rgb = vae.decode(krea2.unpack_latents(lat, 64, 96), output="uint8")
    np.testing.assert_array_equal(np.asarray(pil[0]), rgb[0])
    # Starting from the packed latents it returned with no steps left to take changes nothing but is allowed:
    # giving the same noise as the seed gives the same result.
    again = pipe(**args, output_type="np", return_dict=False)[0]
    np.testing.assert_array_equal(again, arr)


def test_batches_and_guidance():
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO, keep_loaded=False)
    out = pipe(["a fox", "a cat"], negative_prompt="blurry", height=32, width=32, num_inference_steps=2,
               guidance_scale=4.5, num_images_per_prompt=2, output_type="np").images
    assert out.shape == (4, 32, 32, 3)


def test_progress_callback_and_cancel():
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO)
    seen = []
    pipe("a fox", height=32, width=32, num_inference_steps=2,
         callback=lambda stage, done, total: seen.append((stage, done, total)))
    stages = {s for s, _, _ in seen}
    assert {"load", "encode", "denoise", "blocks", "decode"} <= stages
    assert ("denoise", 2, 2) in seen
    with pytest.raises(krea2.Cancelled, match="cancel"):
        pipe("a fox", height=32, width=32, num_inference_steps=2,
             callback=lambda stage, done, total: stage != "denoise")

    def boom(stage, done, total):
        raise RuntimeError("from the callback")
    with pytest.raises(RuntimeError, match="from the callback"):
        pipe("a fox", height=32, width=32, num_inference_steps=2, callback=boom)


def test_ctrl_c_cancels_a_running_call():
    """SIGINT while the C++ loop runs (GIL released) stops it at the next progress point: KeyboardInterrupt."""
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO)
    pipe("a fox", height=32, width=32, num_inference_steps=1)  # load everything first
    timer = threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT))
    start = time.monotonic()
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        pipe("a fox", height=64, width=64, num_inference_steps=10000, output_type="latent")
    assert time.monotonic() - start < 60
    timer.join()


def test_gil_is_released_during_compute():
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO)
    pipe("a fox", height=32, width=32, num_inference_steps=1)
    done = threading.Event()

    def work():
        pipe("a fox", height=64, width=64, num_inference_steps=300, output_type="latent")
        done.set()
    t = threading.Thread(target=work)
    t.start()
    ticks = 0
    while not done.is_set():
        ticks += 1
        time.sleep(0.001)
    t.join()
    # The main thread ran Python code while the pipeline computed (holding the GIL would leave it at 0 or 1;
    # a busy host stretches each sleep, hence the low bar).
    print(f"{ticks} ticks of the main thread during the call")
    assert ticks >= 5


def test_pipeline_errors():
    with pytest.raises(krea2.Krea2Error, match="model_index.json"):
        krea2.Krea2Pipeline.from_pretrained(fixture("tiny"))
    pipe = krea2.Krea2Pipeline.from_pretrained(DEMO)
    with pytest.raises(krea2.Krea2Error, match="16"):
        pipe("a fox", height=100, width=64)
    with pytest.raises(krea2.InvalidArgument, match="output_type"):
        pipe("a fox", output_type="pt")
    with pytest.raises(krea2.Krea2Error, match="steps"):
        pipe("a fox", height=32, width=32, num_inference_steps=0)
    bare = krea2.Krea2Pipeline.from_pretrained(transformer=fixture("sample_turbo", "transformer"))
    with pytest.raises(krea2.Krea2Error, match="no text encoder"):
        bare("a fox", height=32, width=32, output_type="latent")
    with pytest.raises(krea2.Krea2Error, match="no VAE"):
        bare("a fox", height=32, width=32)


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_load_unload_does_not_leak():
    """100 loads and frees of each model (with a call each): resident memory stays flat."""
    i = read_safetensors(fixture("tiny", "inputs.safetensors"))

    def cycle():
        m = krea2.Krea2Transformer2DModel.from_pretrained(fixture("tiny", "transformer"))
        m(i["hidden_states"], i["encoder_hidden_states"], i["timestep"], i["position_ids"],
          i["encoder_attention_mask"])
        v = krea2.Vae.from_pretrained(fixture("vae", "decoder_tiny", "vae"))
        v.decode(np.zeros((1, 16, 2, 2), np.float32))
        p = krea2.Krea2Pipeline.from_pretrained(DEMO)
        del m, v, p
    for _ in range(10):
        cycle()
    before = rss_bytes()
    for _ in range(100):
        cycle()
    grown = rss_bytes() - before
    print(f"RSS grew {grown / 2**20:.2f} MiB over 100 load/unload cycles")
    assert grown < 4 * 2**20
