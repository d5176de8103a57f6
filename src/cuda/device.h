// The CUDA backend's host side: devices, errors and device memory. Everything here throws krea2::Error with
// the CUDA call and its message on failure (an out-of-memory names the bytes asked for).
#pragma once
#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace krea2::cuda {

// Throws krea2::Error("<what>: <CUDA error name>: <message>") unless `status` is cudaSuccess.
void check(cudaError_t status, const char* what);

// Blocks of `threads` for a grid-stride loop over n elements (at least 1, at most 65535).
inline unsigned grid_stride_blocks(int64_t n, int threads) {
  return unsigned(std::clamp<int64_t>((n + threads - 1) / threads, 1, 65535));
}

// CUDA devices this process can use (0 without a driver or a GPU: never throws).
int device_count();
// Why there is no device, in words (e.g. "cudaGetDeviceCount: CUDA driver version is insufficient ..." or
// "no CUDA device"), or a one-line summary of device 0: name, compute capability, memory.
std::string status();

struct DeviceInfo {
  std::string name;
  int major = 0, minor = 0;  // compute capability
  int multiprocessors = 0;
  size_t memory_bytes = 0;
};
DeviceInfo device_info(int device = 0);

// A device allocation of `count` elements of T, released with the object.
template <typename T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t count) : count_(count) {
    if (count > 0) {
      void* p = nullptr;
      const cudaError_t e = cudaMalloc(&p, count * sizeof(T));
      if (e != cudaSuccess)
        check(e, ("cudaMalloc of " + std::to_string(count * sizeof(T)) + " bytes").c_str());
      data_ = static_cast<T*>(p);
    }
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  DeviceBuffer(DeviceBuffer&& o) noexcept : data_(o.data_), count_(o.count_) {
    o.data_ = nullptr;
    o.count_ = 0;
  }
  DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
    if (this != &o) {
      cudaFree(data_);
      data_ = o.data_;
      count_ = o.count_;
      o.data_ = nullptr;
      o.count_ = 0;
    }
    return *this;
  }
  ~DeviceBuffer() { cudaFree(data_); }

  T* get() const { return data_; }
  size_t size() const { return count_; }

  void upload(const T* host, size_t count) {
    check(cudaMemcpy(data_, host, count * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
  }
  void upload(const std::vector<T>& host) { upload(host.data(), host.size()); }
  std::vector<T> download() const {
    std::vector<T> host(count_);
    check(cudaMemcpy(host.data(), data_, count_ * sizeof(T), cudaMemcpyDeviceToHost),
          "cudaMemcpy to the host");
    return host;
  }

 private:
  T* data_ = nullptr;
  size_t count_ = 0;
};

template <typename T>
DeviceBuffer<T> to_device(const std::vector<T>& host) {
  DeviceBuffer<T> d(host.size());
  d.upload(host);
  return d;
}

}  // namespace krea2::cuda
