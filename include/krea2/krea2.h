/* krea2: the Krea 2 text-to-image engine, C API (libkrea2.so).
 *
 * Plain C, opaque handles, no C++ types or exceptions crossing it. Every function that can fail returns a
 * krea2_status; on failure krea2_last_error() gives a message (thread-local, valid until this thread's next
 * call) naming the file, tensor or key and what was expected against what was found.
 *
 * Tensors are caller-owned, contiguous, row-major buffers described by krea2_tensor. Outputs are written into
 * caller buffers whose shape must be exactly what the function documents (the error says what it expected).
 *
 * Handles are independent: one may be used from one thread at a time; several may run at once. Threads and
 * the instruction-set cap are process-wide settings (OpenMP's thread count, the kernel dispatch level).
 *
 * Option and parameter structs start with struct_size: fill them with their *_init function first, so a
 * program built against this header keeps working with later versions of the library.
 */
#ifndef KREA2_KREA2_H
#define KREA2_KREA2_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define KREA2_API __attribute__((visibility("default")))
#else
#define KREA2_API
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- Version ------------------------------------------------------------------------------------------ */

#define KREA2_VERSION_MAJOR 0 /* the soname: libkrea2.so.0 */
#define KREA2_VERSION_MINOR 1
#define KREA2_VERSION_PATCH 0

/* "0.1.0": the library's version, which may be newer than the header's. */
KREA2_API const char* krea2_version(void);
/* KREA2_VERSION_MAJOR * 10000 + MINOR * 100 + PATCH of the library. */
KREA2_API int krea2_version_number(void);
/* The CPU's features, the instruction set level chosen and the kernels it selects, one line each. */
KREA2_API const char* krea2_cpu_info(void);

/* ---- Errors ------------------------------------------------------------------------------------------- */

typedef enum krea2_status {
  KREA2_OK = 0,
  KREA2_ERROR_INVALID_ARGUMENT = 1, /* a null pointer, a bad option, a buffer of the wrong shape or dtype */
  KREA2_ERROR_BAD_INPUT = 2,        /* a file or tensor that cannot be used: missing, malformed, mismatched */
  KREA2_ERROR_CANCELLED = 3,        /* a progress callback returned non-zero */
  KREA2_ERROR_OUT_OF_MEMORY = 4,
  KREA2_ERROR_INTERNAL = 5
} krea2_status;

/* The last failure's message on this thread ("" when none). */
KREA2_API const char* krea2_last_error(void);
/* "ok", "invalid argument", ... */
KREA2_API const char* krea2_status_name(krea2_status status);

/* ---- Tensors and options ------------------------------------------------------------------------------ */

typedef enum krea2_dtype {
  KREA2_F32 = 0,
  KREA2_F16 = 1,
  KREA2_BF16 = 2,
  KREA2_I64 = 3,
  KREA2_I32 = 4,
  KREA2_U8 = 5,
  KREA2_BOOL = 6 /* one byte, 0 or not */
} krea2_dtype;

#define KREA2_MAX_DIMS 8

typedef struct krea2_tensor {
  void* data;
  krea2_dtype dtype;
  int32_t ndim;
  int64_t shape[KREA2_MAX_DIMS];
} krea2_tensor;

/* What the matrix products multiply in. f32 is exact against upstream; bf16: bf16 inputs, f32 sums; int8:
 * per-row int8 weights and activations, int32 sums. Norms, softmax, rope and residuals are float32 in every
 * mode. */
typedef enum krea2_compute {
  KREA2_COMPUTE_F32 = 0,
  KREA2_COMPUTE_BF16 = 1,
  KREA2_COMPUTE_INT8 = 2
} krea2_compute;

/* The highest kernel level used (process-wide; DEFAULT keeps the current cap: the best the CPU has, or
 * KREA2_ISA from the environment). A level the CPU lacks is an error. */
typedef enum krea2_isa { KREA2_ISA_DEFAULT = 0, KREA2_ISA_AVX2 = 1, KREA2_ISA_AVX512 = 2 } krea2_isa;

typedef struct krea2_options {
  uint32_t struct_size;
  int32_t threads; /* > 0: threads for every later call, from any thread (process-wide); 0: leave as is */
  krea2_isa isa;   /* process-wide cap, see krea2_isa */
  krea2_compute compute;      /* the transformer's (and a standalone text encoder's) products */
  krea2_compute text_compute; /* the text encoder's products inside a pipeline */
  int32_t keep_loaded;        /* pipeline: keep components loaded between calls (default 1); 0 loads each
                                 stage's component when it starts and frees it after (lowest peak memory) */
  int32_t allow_unexpected;   /* transformer: tensors the model does not use are ignored, not an error */
} krea2_options;

KREA2_API void krea2_options_init(krea2_options* options);

/* Progress of long work: `stage` is "load", "encode", "denoise", "blocks" or "decode"; done of total. Return
 * 0 to go on, anything else to cancel (the call then fails with KREA2_ERROR_CANCELLED). Called on the thread
 * that made the call. */
typedef int (*krea2_progress_fn)(void* user, const char* stage, int done, int total);

/* ---- Adapters ----------------------------------------------------------------------------------------- */

typedef struct krea2_lora krea2_lora;

/* LoRA / LoHa / LoKr / full-delta files in every layout krea2 reads (diffusers / PEFT, original Krea names,
 * kohya, LyCORIS). The file stays mapped until krea2_lora_free. */
KREA2_API krea2_status krea2_lora_load(const char* path, krea2_lora** out);
KREA2_API void krea2_lora_free(krea2_lora* lora);

/* ---- Transformer -------------------------------------------------------------------------------------- */

typedef struct krea2_transformer krea2_transformer;

typedef struct krea2_transformer_info {
  int64_t in_channels;     /* C of hidden_states (64 for Krea 2) */
  int64_t num_text_layers; /* taps of encoder_hidden_states */
  int64_t text_hidden_dim;
  int64_t hidden_size;
  int64_t num_layers;
  int64_t parameter_count;
} krea2_transformer_info;

/* A diffusers folder (or DIR/transformer), a single .safetensors under diffusers or original Krea names
 * (F32 / BF16 / F16 / ComfyUI fp8 / int8), or a GGUF. `options` may be NULL (defaults). */
KREA2_API krea2_status krea2_transformer_load(const char* path, const krea2_options* options,
                                              krea2_transformer** out);
KREA2_API void krea2_transformer_free(krea2_transformer* transformer);
KREA2_API krea2_status krea2_transformer_get_info(const krea2_transformer* transformer,
                                                  krea2_transformer_info* info);

/* Replaces the attached adapters with these `count` (0 removes them all) at their strengths. merge != 0 folds
 * them into float32 copies of the matrices they change (fastest per call) instead of run-time products. The
 * adapters may be freed afterwards. */
KREA2_API krea2_status krea2_transformer_set_loras(krea2_transformer* transformer,
                                                   const krea2_lora* const* loras, const float* strengths,
                                                   size_t count, int merge);

/* The transformer's inputs under diffusers' names; F32 (or F16 / BF16) tensors, position ids F32 / I64 / I32,
 * the mask BOOL / U8 / I64 / I32 / F32 (nonzero = valid) or NULL for all valid. */
typedef struct krea2_forward_inputs {
  const krea2_tensor* hidden_states;          /* (B, N, in_channels) */
  const krea2_tensor* encoder_hidden_states;  /* (B, L, num_text_layers, text_hidden_dim) */
  const krea2_tensor* timestep;               /* (B,) flow time in [0, 1] */
  const krea2_tensor* position_ids;           /* (L + N, 3) */
  const krea2_tensor* encoder_attention_mask; /* (B, L) or NULL */
} krea2_forward_inputs;

typedef struct krea2_forward_options {
  uint32_t struct_size;
  float lora_scale;     /* multiplies every adapter's strength (diffusers' attention_kwargs["scale"]), 1 */
  int32_t keep_padding; /* keep padded text tokens in the sequence, masked (same result); default 0 */
  krea2_progress_fn progress; /* "blocks"; may be NULL */
  void* user;
} krea2_forward_options;

KREA2_API void krea2_forward_options_init(krea2_forward_options* options);

/* The velocity into `output`: F32 (B, N, in_channels). `options` may be NULL. */
KREA2_API krea2_status krea2_transformer_forward(const krea2_transformer* transformer,
                                                 const krea2_forward_inputs* inputs, krea2_tensor* output,
                                                 const krea2_forward_options* options);

/* ---- Text encoder ------------------------------------------------------------------------------------- */

typedef struct krea2_text_encoder krea2_text_encoder;

typedef struct krea2_text_encoder_info {
  int64_t hidden_size;
  int64_t num_layers;
  int64_t num_default_taps; /* hidden states stacked by default (12 for Krea 2) */
} krea2_text_encoder_info;

/* The Qwen3-VL text tower: a transformers folder, a pipeline root, a ComfyUI single file or a GGUF. The
 * tokenizer: tokenizer.json, vocab.json (+ merges.txt), a folder with them, a GGUF; NULL finds it beside the
 * encoder. options->compute sets the products. */
KREA2_API krea2_status krea2_text_encoder_load(const char* path, const char* tokenizer_path,
                                               const krea2_options* options, krea2_text_encoder** out);
KREA2_API void krea2_text_encoder_free(krea2_text_encoder* encoder);
KREA2_API krea2_status krea2_text_encoder_get_info(const krea2_text_encoder* encoder,
                                                   krea2_text_encoder_info* info);

typedef struct krea2_encode_options {
  uint32_t struct_size;
  int64_t max_sequence_length;   /* 512 */
  int64_t num_images_per_prompt; /* 1 */
  const int32_t* taps;           /* hidden states to stack; NULL: the encoder's default */
  size_t num_taps;
  krea2_progress_fn progress; /* "encode"; may be NULL */
  void* user;
} krea2_encode_options;

KREA2_API void krea2_encode_options_init(krea2_encode_options* options);

/* Krea2Pipeline.encode_prompt for `count` prompts (UTF-8): embeds F32 (count * num_images_per_prompt,
 * max_sequence_length, taps, hidden_size); mask (same batch, max_sequence_length) F32 / U8 / BOOL / I64 with
 * 1 for the valid tokens, or NULL. `options` may be NULL. */
KREA2_API krea2_status krea2_text_encoder_encode(const krea2_text_encoder* encoder,
                                                 const char* const* prompts, size_t count,
                                                 const krea2_encode_options* options, krea2_tensor* embeds,
                                                 krea2_tensor* mask);

/* ---- VAE ---------------------------------------------------------------------------------------------- */

typedef struct krea2_vae krea2_vae;

/* The Qwen-Image / Wan 2.1 VAE: a diffusers vae/ folder, a pipeline root, or a single file (diffusers or Wan
 * names). `options` may be NULL. */
KREA2_API krea2_status krea2_vae_load(const char* path, const krea2_options* options, krea2_vae** out);
KREA2_API void krea2_vae_free(krea2_vae* vae);
/* Pixels per latent along each axis (8). */
KREA2_API int64_t krea2_vae_scale_factor(const krea2_vae* vae);

/* latents (B, 16, h, w) or (B, 16, 1, h, w), F32, normalised as the sampler gives them -> image: F32
 * (B, 3, 8h, 8w) in [-1, 1], or U8 (B, 8h, 8w, 3) RGB bytes as the pipeline's image processor makes them. */
KREA2_API krea2_status krea2_vae_decode(const krea2_vae* vae, const krea2_tensor* latents,
                                        krea2_tensor* image, krea2_progress_fn progress, void* user);

/* ---- Pipeline: prompt to picture ---------------------------------------------------------------------- */

typedef struct krea2_pipeline krea2_pipeline;

/* A diffusers pipeline root (model_index.json with transformer/, text_encoder/, tokenizer/, vae/) and/or the
 * component paths; a non-NULL component replaces the root's. */
typedef struct krea2_pipeline_paths {
  const char* root;
  const char* transformer;
  const char* text_encoder;
  const char* tokenizer;
  const char* vae;
} krea2_pipeline_paths;

/* Checks the paths; the components load on first use (options->keep_loaded keeps them). Only the transformer
 * is required: without a text encoder, generate takes prompt_embeds; without a VAE, it gives latents only.
 * `options` may be NULL. */
KREA2_API krea2_status krea2_pipeline_load(const krea2_pipeline_paths* paths, const krea2_options* options,
                                           krea2_pipeline** out);
KREA2_API void krea2_pipeline_free(krea2_pipeline* pipeline);
/* The transformer's numbers (loads it if needed). */
KREA2_API krea2_status krea2_pipeline_get_info(const krea2_pipeline* pipeline, krea2_transformer_info* info);

typedef struct krea2_generate_params {
  uint32_t struct_size;
  const char* const* prompts; /* UTF-8, a batch of num_prompts */
  size_t num_prompts;
  const char* negative_prompt;    /* used when guidance > 0; NULL = "" */
  int64_t height, width;          /* pixels, multiples of 16; 1024 x 1024 */
  int32_t steps;                  /* 28 */
  double guidance;                /* Krea's convention, 0 = off; 4.5 */
  uint64_t seed;                  /* our Gaussian generator's seed (not torch's); 0 */
  int32_t turbo;                  /* the distilled model's schedule (mu = 1.15); 0 */
  int64_t num_images_per_prompt;  /* 1 */
  int64_t max_sequence_length;    /* 512 */
  const krea2_lora* const* loras; /* attached for this call, at lora_strengths (NULL: 1 each) */
  const float* lora_strengths;
  size_t num_loras;
  float lora_scale;            /* 1 */
  const krea2_tensor* latents; /* initial noise, F32 (B, in_channels / 4, h, w) instead of the seed; NULL */
  krea2_progress_fn progress;  /* may be NULL */
  void* user;
  /* Instead of prompts (num_prompts 0): embeddings as the text encoder gives them, F32 (B, L, taps, dim), one
   * image per row; masks (B, L) or NULL. Without negative_prompt_embeds a guided call encodes
   * negative_prompt. */
  const krea2_tensor* prompt_embeds;
  const krea2_tensor* prompt_embeds_mask;
  const krea2_tensor* negative_prompt_embeds;
  const krea2_tensor* negative_prompt_embeds_mask;
} krea2_generate_params;

KREA2_API void krea2_generate_params_init(krea2_generate_params* params);

/* Outputs of krea2_pipeline_generate; each may be NULL (without rgb and image the VAE is not run). */
typedef struct krea2_generate_outputs {
  uint8_t* rgb;          /* B * height * width * 3 bytes, B = num_prompts * num_images_per_prompt (or the
                            prompt_embeds rows) */
  size_t rgb_size;       /* bytes available at rgb */
  krea2_tensor* image;   /* F32 (B, 3, height, width) in [-1, 1] */
  krea2_tensor* latents; /* F32 (B, in_channels / 4, height / 8, width / 8) after the last step */
} krea2_generate_outputs;

KREA2_API krea2_status krea2_pipeline_generate(krea2_pipeline* pipeline, const krea2_generate_params* params,
                                               const krea2_generate_outputs* outputs);

/* ---- Images ------------------------------------------------------------------------------------------- */

/* Writes an 8-bit RGB PNG (height * width * 3 bytes) with `count` text chunks (keys[i], values[i], UTF-8), to
 * a temporary file renamed to `path` (no partial file on failure). */
KREA2_API krea2_status krea2_write_png(const char* path, const uint8_t* rgb, int64_t height, int64_t width,
                                       const char* const* keys, const char* const* values, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* KREA2_KREA2_H */
