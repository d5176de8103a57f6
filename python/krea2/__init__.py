"""krea2: the Krea 2 text-to-image engine (libkrea2), with diffusers-style classes.

    import krea2
    pipe = krea2.Krea2Pipeline.from_pretrained("path/to/krea2-pipeline")   # a diffusers pipeline root
    image = pipe("a red fox in the snow", height=1024, width=1024).images[0]   # a PIL image
    image.save("fox.png")

    transformer = krea2.Krea2Transformer2DModel.from_pretrained("path/to/transformer", compute="bf16")
    velocity = transformer(hidden_states, encoder_hidden_states, timestep, position_ids,
                           encoder_attention_mask=mask)          # numpy arrays in and out

The work runs in C++ with the GIL released; Ctrl-C cancels a running call (KeyboardInterrupt). Errors raise
krea2.Krea2Error (krea2.InvalidArgument for bad arguments, also a ValueError) with the library's message,
which names the file, tensor or key.
"""

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from . import _native
from ._native import Cancelled, InvalidArgument, Krea2Error

__all__ = [
    "Krea2Transformer2DModel", "Krea2Pipeline", "Krea2PipelineOutput", "TextEncoder", "Vae", "Krea2Error",
    "InvalidArgument", "Cancelled", "version", "cpu_info", "pack_latents", "unpack_latents",
]

__version__ = _native.version()


def version() -> str:
    """The library's version, e.g. "0.1.0"."""
    return _native.version()


def cpu_info() -> str:
    """The CPU's features and the kernels chosen, one line each."""
    return _native.cpu_info()


def _options(compute="f32", text_compute="f32", threads=None, isa=None, keep_loaded=True,
             allow_unexpected=False):
    return _native.options(compute, text_compute, int(threads or 0), isa or "", bool(keep_loaded),
                           bool(allow_unexpected))


def _floats(a, name):
    if a is None:
        return None
    if hasattr(a, "detach"):  # a torch tensor
        a = a.detach().cpu().float().numpy()
    a = np.asarray(a)
    if a.dtype == object:
        raise InvalidArgument(f"{name}: expected a numeric array")
    return np.ascontiguousarray(a, dtype=np.float32)


def pack_latents(latents: np.ndarray) -> np.ndarray:
    """(B, C, h, w) -> (B, h/2 * w/2, 4C), as the pipeline packs 2x2 latent pixels into one token."""
    b, c, h, w = latents.shape
    x = latents.reshape(b, c, h // 2, 2, w // 2, 2).transpose(0, 2, 4, 1, 3, 5)
    return np.ascontiguousarray(x.reshape(b, (h // 2) * (w // 2), c * 4))


def unpack_latents(latents: np.ndarray, height: int, width: int, vae_scale_factor: int = 8) -> np.ndarray:
    """(B, N, 4C) packed tokens of a height x width image -> (B, C, h, w)."""
    b, n, c4 = latents.shape
    h, w = height // vae_scale_factor, width // vae_scale_factor
    x = latents.reshape(b, h // 2, w // 2, c4 // 4, 2, 2).transpose(0, 3, 1, 4, 2, 5)
    return np.ascontiguousarray(x.reshape(b, c4 // 4, h, w))


class _Adapters:
    """diffusers-style adapter bookkeeping: named adapters, the active set and their weights."""

    def __init__(self):
        self.loaded: Dict[str, Any] = {}
        self.active: List[str] = []
        self.weights: Dict[str, float] = {}

    def load(self, path, adapter_name, strength):
        name = adapter_name or f"default_{len(self.loaded)}"
        if name in self.loaded:
            raise InvalidArgument(f"adapter name '{name}' is already in use")
        self.loaded[name] = _native.Lora(str(path))
        self.active.append(name)
        self.weights[name] = float(strength)
        return name

    def set(self, adapter_names, adapter_weights):
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for n in names:
            if n not in self.loaded:
                raise InvalidArgument(f"no adapter named '{n}' (loaded: {sorted(self.loaded)})")
        if adapter_weights is None:
            weights = [1.0] * len(names)
        elif isinstance(adapter_weights, (int, float)):
            weights = [float(adapter_weights)] * len(names)
        else:
            weights = [float(w) for w in adapter_weights]
            if len(weights) != len(names):
                raise InvalidArgument("set_adapters: one weight per adapter name")
        self.active = names
        self.weights.update(zip(names, weights))

    def delete(self, adapter_names):
        names = [adapter_names] if isinstance(adapter_names, str) else list(adapter_names)
        for n in names:
            self.loaded.pop(n, None)
            self.weights.pop(n, None)
        self.active = [n for n in self.active if n in self.loaded]

    def handles(self):
        return [self.loaded[n] for n in self.active], [self.weights[n] for n in self.active]


class Krea2Transformer2DModel:
    """The Krea 2 transformer (diffusers' Krea2Transformer2DModel) on numpy arrays."""

    def __init__(self, native, path):
        self._native = native
        self.path = path
        self.config = native.info()
        self._adapters = _Adapters()
        self._fused = False

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, subfolder=None, compute="f32", threads=None,
                        isa=None, allow_unexpected=False, **_ignored):
        """A diffusers folder (or a pipeline root: its transformer/), a single .safetensors (diffusers or original
        Krea names; F32 / BF16 / F16 / fp8 / int8) or a GGUF. compute: "f32" (exact), "bf16" or "int8"."""
        path = str(pretrained_model_name_or_path)
        if subfolder:
            path = f"{path}/{subfolder}"
        options = _options(compute=compute, threads=threads, isa=isa, allow_unexpected=allow_unexpected)
        return cls(_native.Transformer(path, options), path)

    @property
    def dtype(self):
        return np.float32

    def __call__(self, hidden_states, encoder_hidden_states, timestep, position_ids,
                 encoder_attention_mask=None, attention_kwargs=None, return_dict=None, callback=None):
        """The velocity (B, N, in_channels) as a float32 array. attention_kwargs["scale"] multiplies the adapters'
        strengths, as in diffusers. return_dict=True gives an object with .sample, False a 1-tuple."""
        scale = 1.0
        if attention_kwargs:
            unknown = set(attention_kwargs) - {"scale"}
            if unknown:
                raise InvalidArgument(f"attention_kwargs: unknown keys {sorted(unknown)} (only 'scale')")
            scale = float(attention_kwargs.get("scale", 1.0))
        out = self._native.forward(_floats(hidden_states, "hidden_states"),
                                   _floats(encoder_hidden_states, "encoder_hidden_states"),
                                   _floats(timestep, "timestep").reshape(-1),
                                   _floats(position_ids, "position_ids"),
                                   _floats(encoder_attention_mask, "encoder_attention_mask"), scale, False,
                                   callback)
        if return_dict is None:
            return out
        if return_dict:
            return _Output(sample=out)
        return (out,)

    # ---- adapters, in the diffusers spirit
    def load_lora_weights(self, path, adapter_name=None, strength=1.0):
        """Loads an adapter file (PEFT / diffusers, original names, kohya, LyCORIS) and makes it active."""
        name = self._adapters.load(path, adapter_name, strength)
        self._apply()
        return name

    def set_adapters(self, adapter_names, adapter_weights=None):
        self._adapters.set(adapter_names, adapter_weights)
        self._apply()

    def delete_adapters(self, adapter_names):
        self._adapters.delete(adapter_names)
        self._apply()

    def unload_lora_weights(self):
        self._adapters = _Adapters()
        self._fused = False
        self._apply()

    def fuse_lora(self, lora_scale=1.0):
        """Folds the active adapters (times lora_scale) into float32 copies of the matrices they change."""
        handles, weights = self._adapters.handles()
        self._native.set_loras(handles, [w * lora_scale for w in weights], True)
        self._fused = True

    def unfuse_lora(self):
        self._fused = False
        self._apply()

    def get_active_adapters(self):
        return list(self._adapters.active)

    def _apply(self):
        handles, weights = self._adapters.handles()
        self._native.set_loras(handles, weights, False)


@dataclass
class _Output:
    sample: np.ndarray


@dataclass
class Krea2PipelineOutput:
    images: Any  # a list of PIL images, a (B, H, W, 3) float array in [0, 1], or latents


class TextEncoder:
    """The Qwen3-VL text tower with its tokenizer: Krea2Pipeline.encode_prompt."""

    def __init__(self, native):
        self._native = native
        self.config = native.info()

    @classmethod
    def from_pretrained(cls, path, tokenizer=None, compute="f32", threads=None):
        return cls(_native.TextEncoder(str(path), None if tokenizer is None else str(tokenizer),
                                       _options(compute=compute, threads=threads)))

    def encode_prompt(self, prompt, num_images_per_prompt=1, max_sequence_length=512, taps=None,
                      callback=None):
        """(prompt_embeds (B, L, taps, hidden) float32, prompt_embeds_mask (B, L) bool)."""
        if prompt is None and prompt_embeds is None:
            raise InvalidArgument("give prompt or prompt_embeds")
        prompts = [] if prompt is None else [prompt] if isinstance(prompt, str) else list(prompt)
        return self._native.encode(prompts, int(max_sequence_length), int(num_images_per_prompt),
                                   None if taps is None else [int(t) for t in taps], callback)


class Vae:
    """The Qwen-Image (Wan 2.1) VAE decoder."""

    def __init__(self, native):
        self._native = native

    @classmethod
    def from_pretrained(cls, path, threads=None):
        return cls(_native.Vae(str(path), _options(threads=threads)))

    def decode(self, latents, output="float", callback=None):
        """latents (B, 16, h, w) or (B, 16, 1, h, w) -> float (B, 3, 8h, 8w) in [-1, 1], or output="uint8": the
        pipeline's RGB bytes (B, 8h, 8w, 3)."""
        if output not in ("float", "uint8"):
            raise InvalidArgument(f"output must be 'float' or 'uint8', got {output!r}")
        return self._native.decode(_floats(latents, "latents"), output == "uint8", callback)


class Krea2Pipeline:
    """Prompt to picture, as diffusers' Krea2Pipeline."""

    def __init__(self, native):
        self._native = native
        self._adapters = _Adapters()
        self._lora_scale = 1.0

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path=None, transformer=None, text_encoder=None,
                        tokenizer=None, vae=None, compute="f32", text_compute="f32", keep_loaded=True,
                        threads=None, isa=None, **_ignored):
        """A diffusers pipeline root (model_index.json, transformer/, text_encoder/, tokenizer/, vae/), and/or the
        component paths (each replaces the root's). keep_loaded=False frees each component after its stage."""
        def s(p):
            return None if p is None else str(p)
        options = _options(compute=compute, text_compute=text_compute, threads=threads, isa=isa,
                           keep_loaded=keep_loaded)
        return cls(_native.Pipeline(s(pretrained_model_name_or_path), s(transformer), s(text_encoder),
                                    s(tokenizer), s(vae), options))

    def load_lora_weights(self, path, adapter_name=None, strength=1.0):
        return self._adapters.load(path, adapter_name, strength)

    def set_adapters(self, adapter_names, adapter_weights=None):
        self._adapters.set(adapter_names, adapter_weights)

    def delete_adapters(self, adapter_names):
        self._adapters.delete(adapter_names)

    def unload_lora_weights(self):
        self._adapters = _Adapters()

    def __call__(self, prompt: Union[str, Sequence[str], None] = None, negative_prompt: Optional[str] = None,
                 height: int = 1024, width: int = 1024, num_inference_steps: Optional[int] = None,
                 guidance_scale: float = 4.5, generator_seed: Optional[int] = None, latents=None,
                 output_type: str = "pil", num_images_per_prompt: int = 1, max_sequence_length: int = 512,
                 turbo: bool = False, attention_kwargs=None, return_dict: bool = True, callback=None,
                 prompt_embeds=None, prompt_embeds_mask=None, negative_prompt_embeds=None,
                 negative_prompt_embeds_mask=None):
        """Images for the prompt(s). output_type: "pil" (PIL images; numpy without Pillow), "np" ((B, H, W, 3)
        float32 in [0, 1]), "latent" (packed (B, N, 64) latents, as the pipeline's loop holds them). latents:
        initial noise, (B, 16, h, w) or packed (B, N, 64). generator_seed seeds our generator (not torch's).
        prompt_embeds (B, L, taps, dim) with prompt_embeds_mask (B, L) replace the prompt (one image per row); the
        negative_* pair replaces the negative prompt. callback(stage, done, total) returning False cancels."""
        if output_type not in ("pil", "np", "latent"):
            raise InvalidArgument(f"output_type must be 'pil', 'np' or 'latent', got {output_type!r}")
        if prompt is None and prompt_embeds is None:
            raise InvalidArgument("give prompt or prompt_embeds")
        prompts = [] if prompt is None else [prompt] if isinstance(prompt, str) else list(prompt)
        steps = num_inference_steps if num_inference_steps is not None else (8 if turbo else 28)
        scale = float((attention_kwargs or {}).get("scale", 1.0))
        noise = _floats(latents, "latents")
        if noise is not None and noise.ndim == 3:
            noise = unpack_latents(noise, height, width)
        handles, weights = self._adapters.handles()
        lat, image = self._native.generate(prompts, negative_prompt, int(height), int(width), int(steps),
                                           float(guidance_scale), int(generator_seed or 0), bool(turbo),
                                           int(num_images_per_prompt), int(max_sequence_length), handles,
                                           weights, scale, noise, output_type != "latent",
                                           _floats(prompt_embeds, "prompt_embeds"),
                                           _floats(prompt_embeds_mask, "prompt_embeds_mask"),
                                           _floats(negative_prompt_embeds, "negative_prompt_embeds"),
                                           _floats(negative_prompt_embeds_mask, "negative_prompt_embeds_mask"),
                                           callback)
        if output_type == "latent":
            images = pack_latents(lat)
        else:
            # VaeImageProcessor.postprocess: x * 0.5 + 0.5 clamped, in float32.
            rgb = np.clip(image * np.float32(0.5) + np.float32(0.5), 0, 1).transpose(0, 2, 3, 1)
            images = np.ascontiguousarray(rgb)
            if output_type == "pil":
                images = _to_pil(images)
        return Krea2PipelineOutput(images=images) if return_dict else (images,)


def _to_pil(images):
    try:
        from PIL import Image
    except ImportError:  # numpy arrays without Pillow
        return images
    # round half to even, as torch's .round() in numpy_to_pil
    return [Image.fromarray(np.round(im * 255).astype(np.uint8)) for im in images]
