#include "safetensors_read.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static unsigned char* read_file(const char* path, long* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  *size = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char* bytes = malloc((size_t)*size + 1);
  if (bytes && fread(bytes, 1, (size_t)*size, f) != (size_t)*size) {
    free(bytes);
    bytes = NULL;
  }
  fclose(f);
  return bytes;
}

int read_tensor(const char* path, const char* name, test_tensor* out) {
  memset(out, 0, sizeof *out);
  long size = 0;
  unsigned char* bytes = read_file(path, &size);
  if (!bytes || size < 8) {
    fprintf(stderr, "%s: cannot read\n", path);
    free(bytes);
    return -1;
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
  char* header = malloc(header_len + 1);
  memcpy(header, bytes + 8, header_len);
  header[header_len] = 0;
  char key[256];
  snprintf(key, sizeof key, "\"%s\"", name);
  char* entry = strstr(header, key);
  if (!entry) {
    fprintf(stderr, "%s: no tensor %s\n", path, name);
    free(header);
    free(bytes);
    return -1;
  }
  char* dtype = strstr(entry, "\"dtype\"");
  char* shape = strstr(entry, "\"shape\"");
  char* offsets = strstr(entry, "\"data_offsets\"");
  char dt[16] = {0};
  sscanf(strchr(dtype + 7, '"') + 1, "%15[^\"]", dt);
  char* p = strchr(shape, '[') + 1;
  out->numel = 1;
  while (*p != ']') {
    char* end;
    long long d = strtoll(p, &end, 10);
    if (end == p) break;
    out->shape[out->ndim++] = d;
    out->numel *= d;
    p = end;
    while (*p == ',' || *p == ' ') ++p;
  }
  long long begin = 0, stop = 0;
  sscanf(strchr(offsets, '[') + 1, "%lld , %lld", &begin, &stop);
  const unsigned char* data = bytes + 8 + header_len + begin;
  out->data = malloc(sizeof(float) * (size_t)(out->numel ? out->numel : 1));
  for (int64_t i = 0; i < out->numel; ++i) {
    if (!strcmp(dt, "F32")) {
      memcpy(&out->data[i], data + 4 * i, 4);
    } else if (!strcmp(dt, "BOOL") || !strcmp(dt, "U8")) {
      out->data[i] = (float)data[i];
    } else if (!strcmp(dt, "I64")) {
      int64_t v;
      memcpy(&v, data + 8 * i, 8);
      out->data[i] = (float)v;
    } else {
      fprintf(stderr, "%s: %s has dtype %s, not handled\n", path, name, dt);
      free(header);
      free(bytes);
      return -1;
    }
  }
  free(header);
  free(bytes);
  return 0;
}

int has_tensor(const char* path, const char* name) {
  long size = 0;
  unsigned char* bytes = read_file(path, &size);
  if (!bytes) return 0;
  char key[256];
  snprintf(key, sizeof key, "\"%s\"", name);
  /* Names appear only in the header, which is text; the search stops at the first NUL of the data. */
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; --i) header_len = header_len << 8 | bytes[i];
  int found = 0;
  if (size >= 8 && header_len <= (uint64_t)size - 8) {
    char* header = malloc(header_len + 1);
    memcpy(header, bytes + 8, header_len);
    header[header_len] = 0;
    found = strstr(header, key) != NULL;
    free(header);
  }
  free(bytes);
  return found;
}

void free_tensor(test_tensor* t) {
  free(t->data);
  t->data = NULL;
}
