/* Prompt to PNG through the krea2 C API.
 *
 *   krea2_example PIPELINE_ROOT "a prompt" out.png [HEIGHT WIDTH STEPS]
 *
 * PIPELINE_ROOT is a diffusers Krea 2 pipeline folder (model_index.json, transformer/, text_encoder/,
 * tokenizer/, vae/); the repository's tests/fixtures/demo_pipeline is a tiny random one. */
#include <krea2/krea2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int show_progress(void* user, const char* stage, int done, int total) {
  (void)user;
  if (strcmp(stage, "load") == 0) {
    fprintf(stderr, "loading a component\n");
  } else if (strcmp(stage, "blocks") != 0) {
    fprintf(stderr, "\r%-8s %d/%d ", stage, done, total);
    if (done == total) fprintf(stderr, "\n");
  }
  return 0; /* non-zero would cancel */
}

int main(int argc, char** argv) {
  if (argc != 4 && argc != 7) {
    fprintf(stderr, "usage: %s PIPELINE_ROOT PROMPT OUT.png [HEIGHT WIDTH STEPS]\n", argv[0]);
    return 2;
  }
  krea2_pipeline_paths paths = {argv[1], NULL, NULL, NULL, NULL};
  krea2_options options;
  krea2_options_init(&options);
  krea2_pipeline* pipeline = NULL;
  if (krea2_pipeline_load(&paths, &options, &pipeline) != KREA2_OK) {
    fprintf(stderr, "error: %s\n", krea2_last_error());
    return 1;
  }

  const char* prompt = argv[2];
  krea2_generate_params params;
  krea2_generate_params_init(&params);
  params.prompts = &prompt;
  params.num_prompts = 1;
  if (argc == 7) {
    params.height = atoi(argv[4]);
    params.width = atoi(argv[5]);
    params.steps = atoi(argv[6]);
  }
  params.seed = 42;
  params.progress = show_progress;

  const size_t size = (size_t)params.height * (size_t)params.width * 3;
  unsigned char* rgb = malloc(size);
  krea2_generate_outputs outputs = {rgb, size, NULL, NULL};
  int status = 0;
  if (!rgb || krea2_pipeline_generate(pipeline, &params, &outputs) != KREA2_OK) {
    fprintf(stderr, "error: %s\n", rgb ? krea2_last_error() : "out of memory");
    status = 1;
  } else {
    const char* keys[1] = {"prompt"};
    if (krea2_write_png(argv[3], rgb, params.height, params.width, keys, &prompt, 1) != KREA2_OK) {
      fprintf(stderr, "error: %s\n", krea2_last_error());
      status = 1;
    } else {
      printf("wrote %s (%lld x %lld) with libkrea2 %s\n", argv[3], (long long)params.width,
             (long long)params.height, krea2_version());
    }
  }
  free(rgb);
  krea2_pipeline_free(pipeline);
  return status;
}
