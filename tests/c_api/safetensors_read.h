/* A minimal safetensors reader for the C API test (plain C): finds one tensor by name in a file written by
 * the upstream tools and widens F32 / BOOL / U8 / I64 to a float array. Test-only: it trusts its fixture
 * files. */
#ifndef KREA2_TEST_SAFETENSORS_READ_H
#define KREA2_TEST_SAFETENSORS_READ_H

#include <stdint.h>

typedef struct test_tensor {
  float* data; /* malloc'd, numel floats */
  int ndim;
  int64_t shape[8];
  int64_t numel;
} test_tensor;

/* Returns 0 on success, prints a message and returns -1 otherwise. */
int read_tensor(const char* path, const char* name, test_tensor* out);
/* 1 when the file holds a tensor of that name. */
int has_tensor(const char* path, const char* name);
void free_tensor(test_tensor* t);

#endif
