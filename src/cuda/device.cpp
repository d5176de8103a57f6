#include "cuda/device.h"

#include <cuda_runtime_api.h>

#include "krea2/error.h"

namespace krea2::cuda {

void check(cudaError_t status, const char* what) {
  if (status == cudaSuccess) return;
  throw Error(std::string(what) + ": " + cudaGetErrorName(status) + ": " + cudaGetErrorString(status));
}

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error of a machine without a driver
    return 0;
  }
  return n;
}

std::string status() {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device (cudaGetDeviceCount: ") + cudaGetErrorName(e) + ": " +
           cudaGetErrorString(e) + ")";
  }
  if (n == 0) return "no CUDA device";
  const DeviceInfo d = device_info(0);
  return d.name + ", compute capability " + std::to_string(d.major) + "." + std::to_string(d.minor) + ", " +
         std::to_string(d.multiprocessors) + " SMs, " + std::to_string(d.memory_bytes >> 20) + " MiB" +
         (n > 1 ? " (device 0 of " + std::to_string(n) + ")" : "");
}

DeviceInfo device_info(int device) {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, device), "cudaGetDeviceProperties");
  DeviceInfo d;
  d.name = p.name;
  d.major = p.major;
  d.minor = p.minor;
  d.multiprocessors = p.multiProcessorCount;
  d.memory_bytes = p.totalGlobalMem;
  return d;
}

}  // namespace krea2::cuda
