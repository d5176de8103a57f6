/* The C API from C: every model on the upstream fixtures through libkrea2.so, the pipeline on the bundled
 * demo models, cancellation and the error paths. Usage: test_c_api FIXTURES_DIR TEMP_DIR */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "krea2/krea2.h"
#include "safetensors_read.h"

static int failures = 0;
static char fixtures[1024];
static char temp_dir[1024];

#define CHECK(cond, ...)                                   \
  do {                                                     \
    if (!(cond)) {                                         \
      ++failures;                                          \
      fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__); \
      fprintf(stderr, __VA_ARGS__);                        \
      fprintf(stderr, "\n");                               \
    }                                                      \
  } while (0)

#define CHECK_OK(call)                                                                     \
  do {                                                                                     \
    krea2_status s_ = (call);                                                              \
    CHECK(s_ == KREA2_OK, "%s: %s: %s", #call, krea2_status_name(s_), krea2_last_error()); \
  } while (0)

static const char* path(const char* relative) {
  static char buffers[8][2048];
  static int next = 0;
  char* b = buffers[next++ % 8];
  snprintf(b, 2048, "%s/%s", fixtures, relative);
  return b;
}

static double rel_l2(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    den += (double)b[i] * b[i];
  }
  return sqrt(num / (den > 0 ? den : 1));
}

static krea2_tensor view(test_tensor* t) {
  krea2_tensor v;
  memset(&v, 0, sizeof v);
  v.data = t->data;
  v.dtype = KREA2_F32;
  v.ndim = t->ndim;
  for (int i = 0; i < t->ndim; ++i) v.shape[i] = t->shape[i];
  return v;
}

static krea2_tensor buffer(float* data, int ndim, const int64_t* shape) {
  krea2_tensor v;
  memset(&v, 0, sizeof v);
  v.data = data;
  v.dtype = KREA2_F32;
  v.ndim = ndim;
  for (int i = 0; i < ndim; ++i) v.shape[i] = shape[i];
  return v;
}

/* Runs the fixture's inputs through `t` at lora_scale and compares with `expected_name` of
 * expected.safetensors. */
static void check_forward(const krea2_transformer* t, const char* fixture_case, const char* expected_name,
                          float lora_scale) {
  char inputs_path[1200], expected_path[1200];
  snprintf(inputs_path, sizeof inputs_path, "%s/%s/inputs.safetensors", fixtures, fixture_case);
  snprintf(expected_path, sizeof expected_path, "%s/%s/expected.safetensors", fixtures, fixture_case);
  test_tensor hs, ehs, ts, pos, mask = {0}, expected;
  const int has_mask = has_tensor(inputs_path, "encoder_attention_mask");
  if (read_tensor(inputs_path, "hidden_states", &hs) ||
      read_tensor(inputs_path, "encoder_hidden_states", &ehs) || read_tensor(inputs_path, "timestep", &ts) ||
      read_tensor(inputs_path, "position_ids", &pos) ||
      (has_mask && read_tensor(inputs_path, "encoder_attention_mask", &mask)) ||
      read_tensor(expected_path, expected_name, &expected)) {
    ++failures;
    return;
  }
  krea2_tensor vhs = view(&hs), vehs = view(&ehs), vts = view(&ts), vpos = view(&pos), vmask = view(&mask);
  krea2_forward_inputs in = {&vhs, &vehs, &vts, &vpos, has_mask ? &vmask : NULL};
  float* out = malloc(sizeof(float) * (size_t)hs.numel);
  krea2_tensor vout = buffer(out, hs.ndim, hs.shape);
  krea2_forward_options options;
  krea2_forward_options_init(&options);
  options.lora_scale = lora_scale;
  CHECK_OK(krea2_transformer_forward(t, &in, &vout, &options));
  const double err = rel_l2(out, expected.data, expected.numel);
  CHECK(err <= 1e-5, "%s %s: rel L2 %g > 1e-5", fixture_case, expected_name, err);
  printf("forward %-20s %-22s rel L2 %.3g\n", fixture_case, expected_name, err);

  /* A wrong output shape is refused before any work, naming the shapes. */
  int64_t wrong[3] = {hs.shape[0], hs.shape[1] + 1, hs.shape[2]};
  krea2_tensor vwrong = buffer(out, 3, wrong);
  krea2_status s = krea2_transformer_forward(t, &in, &vwrong, NULL);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "output must have shape"),
        "wrong output shape: %s: %s", krea2_status_name(s), krea2_last_error());
  free(out);
  free_tensor(&hs);
  free_tensor(&ehs);
  free_tensor(&ts);
  free_tensor(&pos);
  free_tensor(&mask);
  free_tensor(&expected);
}

static void test_transformer(void) {
  const char* cases[] = {"small_nomask", "small_masked_batch", "tiny"};
  for (int i = 0; i < 3; ++i) {
    char dir[1200];
    snprintf(dir, sizeof dir, "%s/%s/transformer", fixtures, cases[i]);
    krea2_transformer* t = NULL;
    CHECK_OK(krea2_transformer_load(dir, NULL, &t));
    if (!t) continue;
    krea2_transformer_info info;
    CHECK_OK(krea2_transformer_get_info(t, &info));
    CHECK(info.in_channels > 0 && info.parameter_count > 0, "info");
    check_forward(t, cases[i], "sample", 1.0f);
    krea2_transformer_free(t);
  }
}

static void test_lora(void) {
  krea2_transformer* t = NULL;
  krea2_lora* lora = NULL;
  CHECK_OK(krea2_transformer_load(path("small_lora/transformer"), NULL, &t));
  CHECK_OK(krea2_lora_load(path("small_lora/lora/pytorch_lora_weights.safetensors"), &lora));
  if (!t || !lora) return;
  const float one = 1.0f;
  const krea2_lora* loras[1] = {lora};
  CHECK_OK(krea2_transformer_set_loras(t, loras, &one, 1, 0));
  krea2_lora_free(lora); /* the transformer keeps what it needs */
  check_forward(t, "small_lora", "sample_lora_scale_1", 1.0f);
  check_forward(t, "small_lora", "sample_lora_scale_0.5", 0.5f);
  CHECK_OK(krea2_transformer_set_loras(t, NULL, NULL, 0, 0));
  check_forward(t, "small_lora", "sample", 1.0f);
  krea2_transformer_free(t);
}

static void test_text_encoder(void) {
  krea2_text_encoder* e = NULL;
  CHECK_OK(krea2_text_encoder_load(path("text/encoder_tiny/text_encoder"), path("text/tokenizer"), NULL, &e));
  if (!e) return;
  krea2_text_encoder_info info;
  CHECK_OK(krea2_text_encoder_get_info(e, &info));
  const char* expected_path = path("text/encoder_tiny/expected_batch2_msl24.safetensors");
  test_tensor embeds_ref, mask_ref;
  if (read_tensor(expected_path, "prompt_embeds", &embeds_ref) ||
      read_tensor(expected_path, "prompt_embeds_mask", &mask_ref)) {
    ++failures;
    return;
  }
  CHECK(info.num_default_taps == embeds_ref.shape[2] && info.hidden_size == embeds_ref.shape[3], "info");
  const char* prompts[2] = {
      "An extremely detailed oil painting of a busy harbor at sunset, with fishing boats, gulls, lanterns "
      "and a "
      "lighthouse in the far distance",
      "a red fox"};
  krea2_encode_options options;
  krea2_encode_options_init(&options);
  options.max_sequence_length = 24;
  float* embeds = malloc(sizeof(float) * (size_t)embeds_ref.numel);
  unsigned char* mask = malloc((size_t)mask_ref.numel);
  krea2_tensor vembeds = buffer(embeds, 4, embeds_ref.shape);
  krea2_tensor vmask = buffer(NULL, 2, mask_ref.shape);
  vmask.data = mask;
  vmask.dtype = KREA2_BOOL;
  CHECK_OK(krea2_text_encoder_encode(e, prompts, 2, &options, &vembeds, &vmask));
  /* Valid rows only: upstream's pad rows hold whatever the padded run left there and are never read. */
  const int64_t rows = mask_ref.numel, width = embeds_ref.numel / rows;
  double num = 0, den = 0;
  for (int64_t r = 0; r < rows; ++r) {
    if (mask_ref.data[r] == 0) continue;
    for (int64_t i = r * width; i < (r + 1) * width; ++i) {
      const double d = (double)embeds[i] - embeds_ref.data[i];
      num += d * d;
      den += (double)embeds_ref.data[i] * embeds_ref.data[i];
    }
  }
  const double err = sqrt(num / den);
  CHECK(err <= 1e-5, "prompt_embeds: rel L2 %g > 1e-5", err);
  int mask_differs = 0;
  for (int64_t i = 0; i < mask_ref.numel; ++i) mask_differs += (mask[i] != 0) != (mask_ref.data[i] != 0);
  CHECK(mask_differs == 0, "prompt_embeds_mask: %d values differ", mask_differs);
  printf("encode  batch2_msl24 prompt_embeds rel L2 %.3g, mask differences %d\n", err, mask_differs);

  /* A buffer for another length is refused with the expected shape in the message. */
  options.max_sequence_length = 25;
  krea2_status s = krea2_text_encoder_encode(e, prompts, 2, &options, &vembeds, NULL);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "(2, 25, 3, 32)"), "%s",
        krea2_last_error());
  free(embeds);
  free(mask);
  free_tensor(&embeds_ref);
  free_tensor(&mask_ref);
  krea2_text_encoder_free(e);
}

static void test_vae(void) {
  krea2_vae* vae = NULL;
  CHECK_OK(krea2_vae_load(path("vae/decoder_tiny/vae"), NULL, &vae));
  if (!vae) return;
  CHECK(krea2_vae_scale_factor(vae) == 8, "scale factor %lld", (long long)krea2_vae_scale_factor(vae));
  const char* inputs_path = path("vae/decoder_tiny/inputs.safetensors");
  const char* expected_path = path("vae/decoder_tiny/expected.safetensors");
  test_tensor latents, image_ref, bytes_ref;
  if (read_tensor(inputs_path, "latents_unpacked", &latents) ||
      read_tensor(expected_path, "image", &image_ref) ||
      read_tensor(expected_path, "image_uint8", &bytes_ref)) {
    ++failures;
    return;
  }
  krea2_tensor vlatents = view(&latents);
  float* image = malloc(sizeof(float) * (size_t)image_ref.numel);
  krea2_tensor vimage = buffer(image, 4, image_ref.shape);
  CHECK_OK(krea2_vae_decode(vae, &vlatents, &vimage, NULL, NULL));
  const double err = rel_l2(image, image_ref.data, image_ref.numel);
  CHECK(err <= 1e-5, "image: rel L2 %g > 1e-5", err);

  unsigned char* bytes = malloc((size_t)bytes_ref.numel);
  krea2_tensor vbytes = buffer(NULL, 4, bytes_ref.shape);
  vbytes.data = bytes;
  vbytes.dtype = KREA2_U8;
  CHECK_OK(krea2_vae_decode(vae, &vlatents, &vbytes, NULL, NULL));
  int64_t differing = 0;
  int max_diff = 0;
  for (int64_t i = 0; i < bytes_ref.numel; ++i) {
    const int d = abs((int)bytes[i] - (int)bytes_ref.data[i]);
    differing += d != 0;
    if (d > max_diff) max_diff = d;
  }
  CHECK(max_diff <= 1 && differing <= 0.002 * (double)bytes_ref.numel, "image_uint8: %lld differ, max %d",
        (long long)differing, max_diff);
  printf("decode  decoder_tiny image rel L2 %.3g, uint8 %lld differing (max %d)\n", err, (long long)differing,
         max_diff);

  /* Latents of the wrong channel count. */
  vlatents.shape[1] = 15;
  krea2_status s = krea2_vae_decode(vae, &vlatents, &vimage, NULL, NULL);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "latents must be"), "%s",
        krea2_last_error());
  free(image);
  free(bytes);
  free_tensor(&latents);
  free_tensor(&image_ref);
  free_tensor(&bytes_ref);
  krea2_vae_free(vae);
}

static int stages_seen = 0;
static int count_progress(void* user, const char* stage, int done, int total) {
  (void)done;
  (void)total;
  if (!strcmp(stage, "denoise")) ++*(int*)user;
  ++stages_seen;
  return 0;
}

static int cancel_at_denoise(void* user, const char* stage, int done, int total) {
  (void)user;
  (void)done;
  (void)total;
  return !strcmp(stage, "denoise");
}

static void test_pipeline(void) {
  krea2_pipeline_paths paths = {path("demo_pipeline"), NULL, NULL, NULL, NULL};
  krea2_options options;
  krea2_options_init(&options);
  krea2_pipeline* p = NULL;
  CHECK_OK(krea2_pipeline_load(&paths, &options, &p));
  if (!p) return;
  krea2_transformer_info info;
  CHECK_OK(krea2_pipeline_get_info(p, &info));
  const char* prompt = "A watercolor painting of a lighthouse";
  krea2_generate_params params;
  krea2_generate_params_init(&params);
  params.prompts = &prompt;
  params.num_prompts = 1;
  params.height = 64;
  params.width = 96;
  params.steps = 3;
  params.seed = 7;
  int steps_seen = 0;
  params.progress = count_progress;
  params.user = &steps_seen;
  enum { H = 64, W = 96 };
  unsigned char* rgb = malloc(H * W * 3);
  const int64_t latent_shape[4] = {1, info.in_channels / 4, H / 8, W / 8};
  float* latents = malloc(sizeof(float) * (size_t)(info.in_channels / 4 * (H / 8) * (W / 8)));
  krea2_tensor vlatents = buffer(latents, 4, latent_shape);
  krea2_generate_outputs outputs = {rgb, H * W * 3, NULL, &vlatents};
  CHECK_OK(krea2_pipeline_generate(p, &params, &outputs));
  CHECK(steps_seen == 3, "denoise progress called %d times, 3 expected", steps_seen);

  /* The picture is the VAE's decode of the latents it reports. */
  krea2_vae* vae = NULL;
  CHECK_OK(krea2_vae_load(path("demo_pipeline/vae"), NULL, &vae));
  unsigned char* again = malloc(H * W * 3);
  const int64_t rgb_shape[4] = {1, H, W, 3};
  krea2_tensor vagain = buffer(NULL, 4, rgb_shape);
  vagain.data = again;
  vagain.dtype = KREA2_U8;
  CHECK_OK(krea2_vae_decode(vae, &vlatents, &vagain, NULL, NULL));
  CHECK(memcmp(rgb, again, H * W * 3) == 0, "generate's picture differs from decode of its latents");
  krea2_vae_free(vae);

  /* The same seed gives the same picture; the PNG writer takes it. */
  params.progress = NULL;
  memset(again, 0, H * W * 3);
  krea2_generate_outputs outputs2 = {again, H * W * 3, NULL, NULL};
  CHECK_OK(krea2_pipeline_generate(p, &params, &outputs2));
  CHECK(memcmp(rgb, again, H * W * 3) == 0, "a second run with the same seed differs");
  char png[1200];
  snprintf(png, sizeof png, "%s/c_api_demo.png", temp_dir);
  const char* keys[1] = {"prompt"};
  CHECK_OK(krea2_write_png(png, rgb, H, W, keys, &prompt, 1));
  FILE* f = fopen(png, "rb");
  CHECK(f != NULL, "%s was not written", png);
  if (f) fclose(f);

  /* Cancelling from the callback. */
  params.progress = cancel_at_denoise;
  krea2_status s = krea2_pipeline_generate(p, &params, &outputs2);
  CHECK(s == KREA2_ERROR_CANCELLED && strstr(krea2_last_error(), "cancel"), "%s: %s", krea2_status_name(s),
        krea2_last_error());

  /* Buffers too small and bad sizes are refused before any work. */
  params.progress = NULL;
  krea2_generate_outputs small = {rgb, 100, NULL, NULL};
  s = krea2_pipeline_generate(p, &params, &small);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "rgb_size"), "%s",
        krea2_last_error());
  params.height = 100;
  s = krea2_pipeline_generate(p, &params, &outputs2);
  CHECK(s == KREA2_ERROR_BAD_INPUT && strstr(krea2_last_error(), "16"), "%s: %s", krea2_status_name(s),
        krea2_last_error());
  free(rgb);
  free(again);
  free(latents);
  krea2_pipeline_free(p);
}

/* The sampler fixtures through the pipeline, from embeddings and noise (no text encoder, no VAE). */
static void test_sampler(const char* fixture_case, int steps, double guidance, int turbo) {
  char dir[1200], inputs_path[1200], expected_path[1200];
  snprintf(dir, sizeof dir, "%s/%s/transformer", fixtures, fixture_case);
  snprintf(inputs_path, sizeof inputs_path, "%s/%s/inputs.safetensors", fixtures, fixture_case);
  snprintf(expected_path, sizeof expected_path, "%s/%s/expected.safetensors", fixtures, fixture_case);
  krea2_pipeline_paths paths = {NULL, dir, NULL, NULL, NULL};
  krea2_pipeline* p = NULL;
  CHECK_OK(krea2_pipeline_load(&paths, NULL, &p));
  test_tensor embeds, mask, noise, expected, neg = {0}, neg_mask = {0};
  const int guided = guidance > 0;
  if (!p || read_tensor(inputs_path, "prompt_embeds", &embeds) ||
      read_tensor(inputs_path, "prompt_embeds_mask", &mask) || read_tensor(inputs_path, "noise", &noise) ||
      read_tensor(expected_path, "latents_unpacked", &expected) ||
      (guided && (read_tensor(inputs_path, "negative_prompt_embeds", &neg) ||
                  read_tensor(inputs_path, "negative_prompt_embeds_mask", &neg_mask)))) {
    ++failures;
    krea2_pipeline_free(p);
    return;
  }
  krea2_tensor ve = view(&embeds), vm = view(&mask), vn = view(&noise), vneg = view(&neg),
               vneg_mask = view(&neg_mask);
  krea2_generate_params params;
  krea2_generate_params_init(&params);
  params.prompt_embeds = &ve;
  params.prompt_embeds_mask = &vm;
  if (guided) {
    params.negative_prompt_embeds = &vneg;
    params.negative_prompt_embeds_mask = &vneg_mask;
  }
  params.latents = &vn;
  params.steps = steps;
  params.guidance = guidance;
  params.turbo = turbo;
  float* out = malloc(sizeof(float) * (size_t)expected.numel);
  krea2_tensor vout = buffer(out, 4, expected.shape);
  krea2_generate_outputs outputs = {NULL, 0, NULL, &vout};
  CHECK_OK(krea2_pipeline_generate(p, &params, &outputs));
  const double err = rel_l2(out, expected.data, expected.numel);
  CHECK(err <= 1e-5, "%s: latents rel L2 %g > 1e-5", fixture_case, err);
  printf("sample  %-20s latents rel L2 %.3g\n", fixture_case, err);
  /* Asking for a picture from a pipeline without a VAE is an error naming it. */
  const size_t rgb_size = (size_t)(expected.shape[0] * expected.shape[2] * 8 * expected.shape[3] * 8 * 3);
  unsigned char* rgb = malloc(rgb_size);
  krea2_generate_outputs picture = {rgb, rgb_size, NULL, NULL};
  krea2_status s = krea2_pipeline_generate(p, &params, &picture);
  CHECK(s == KREA2_ERROR_BAD_INPUT && strstr(krea2_last_error(), "no VAE"), "%s", krea2_last_error());
  free(rgb);
  free(out);
  free_tensor(&embeds);
  free_tensor(&mask);
  free_tensor(&noise);
  free_tensor(&expected);
  free_tensor(&neg);
  free_tensor(&neg_mask);
  krea2_pipeline_free(p);
}

static void test_errors(void) {
  krea2_transformer* t = (krea2_transformer*)&failures; /* must be reset to NULL on failure */
  krea2_status s = krea2_transformer_load("/nonexistent/krea2.safetensors", NULL, &t);
  CHECK(s == KREA2_ERROR_BAD_INPUT && t == NULL, "missing file: %s", krea2_status_name(s));
  CHECK(strstr(krea2_last_error(), "/nonexistent/krea2.safetensors") != NULL, "message: %s",
        krea2_last_error());
  s = krea2_transformer_load(NULL, NULL, &t);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "path is NULL"), "%s",
        krea2_last_error());
  s = krea2_transformer_load(path("tiny/transformer"), NULL, NULL);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT, "NULL out: %s", krea2_status_name(s));
  krea2_options options;
  krea2_options_init(&options);
  options.struct_size = 0;
  s = krea2_vae_load(path("vae/decoder_tiny/vae"), &options, NULL);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT, "%s", krea2_status_name(s));
  krea2_options_init(&options);
  options.compute = (krea2_compute)7;
  krea2_vae* vae = NULL;
  s = krea2_vae_load(path("vae/decoder_tiny/vae"), &options, &vae);
  CHECK(s == KREA2_ERROR_INVALID_ARGUMENT && strstr(krea2_last_error(), "options.compute"), "%s",
        krea2_last_error());
  krea2_lora* lora = NULL;
  s = krea2_lora_load(path("small_lora/case.json"), &lora);
  CHECK(s == KREA2_ERROR_BAD_INPUT && lora == NULL && strstr(krea2_last_error(), "case.json"), "%s",
        krea2_last_error());
  /* A success clears the message. */
  CHECK_OK(krea2_vae_load(path("vae/decoder_tiny/vae"), NULL, &vae));
  CHECK(krea2_last_error()[0] == 0, "last error not cleared: %s", krea2_last_error());
  krea2_vae_free(vae);
  krea2_transformer_free(NULL); /* free of NULL is a no-op */
  krea2_pipeline_free(NULL);
}

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: %s FIXTURES_DIR TEMP_DIR\n", argv[0]);
    return 2;
  }
  snprintf(fixtures, sizeof fixtures, "%s", argv[1]);
  snprintf(temp_dir, sizeof temp_dir, "%s", argv[2]);
  CHECK(
      krea2_version_number() == KREA2_VERSION_MAJOR * 10000 + KREA2_VERSION_MINOR * 100 + KREA2_VERSION_PATCH,
      "version %d", krea2_version_number());
  CHECK(strlen(krea2_version()) > 0 && strstr(krea2_cpu_info(), "isa ") != NULL, "version / cpu info");
  printf("libkrea2 %s\n%s", krea2_version(), krea2_cpu_info());
  test_transformer();
  test_lora();
  test_text_encoder();
  test_vae();
  test_pipeline();
  test_sampler("sample_base_cfg", 6, 4.5, 0);
  test_sampler("sample_turbo", 4, 0.0, 1);
  test_errors();
  (void)stages_seen;
  if (failures) {
    fprintf(stderr, "%d check(s) failed\n", failures);
    return 1;
  }
  printf("all C API checks passed\n");
  return 0;
}
