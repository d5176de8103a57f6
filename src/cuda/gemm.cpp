// y (+)= x W^T on the GPU through cuBLASLt (cuda/ops.h). Row-major y (M x N) is column-major y^T (N x M):
// y^T = W x^T with W stored row-major as N x K, i.e. the column-major K x N matrix taken transposed. So: A =
// W (K x N, ld K, op T), B = x (K x M, ld K), C = D = y (N x M, ld ldy). Compute type 32F: float32 products
// and sums (no TF32 for float32 inputs), float32 scale.
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <string>

#include "cuda/device.h"
#include "cuda/ops.h"
#include "krea2/error.h"

namespace krea2::cuda {
namespace {

void check_blas(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS)
    throw Error(std::string(what) + ": cuBLASLt status " + std::to_string(int(s)));
}

constexpr size_t kWorkspaceBytes = size_t(32) << 20;

// One cuBLASLt handle and workspace per thread, created on first use.
struct Lt {
  cublasLtHandle_t handle = nullptr;
  DeviceBuffer<unsigned char> workspace;
  Lt() {
    check_blas(cublasLtCreate(&handle), "cublasLtCreate");
    workspace = DeviceBuffer<unsigned char>(kWorkspaceBytes);
  }
  ~Lt() { cublasLtDestroy(handle); }
  Lt(const Lt&) = delete;
  Lt& operator=(const Lt&) = delete;
};

Lt& lt() {
  thread_local Lt instance;
  return instance;
}

// Releases cuBLASLt descriptors at scope end.
struct Descriptors {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulPreference_t pref = nullptr;
  ~Descriptors() {
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    if (c) cublasLtMatrixLayoutDestroy(c);
    if (b) cublasLtMatrixLayoutDestroy(b);
    if (a) cublasLtMatrixLayoutDestroy(a);
    if (op) cublasLtMatmulDescDestroy(op);
  }
};

void matmul(cudaDataType_t in_type, const void* x, int64_t M, int64_t K, const void* w, int64_t N, float* y,
            int64_t ldy, bool accumulate, cudaStream_t stream) {
  if (M <= 0 || N <= 0) return;
  if (ldy < N) throw Error("cuda gemm_xwt: ldy " + std::to_string(ldy) + " < N " + std::to_string(N));
  Lt& h = lt();
  Descriptors d;
  check_blas(cublasLtMatmulDescCreate(&d.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t transpose = CUBLAS_OP_T, plain = CUBLAS_OP_N;
  check_blas(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSA, &transpose, sizeof transpose),
             "cublasLtMatmulDescSetAttribute(TRANSA)");
  check_blas(cublasLtMatmulDescSetAttribute(d.op, CUBLASLT_MATMUL_DESC_TRANSB, &plain, sizeof plain),
             "cublasLtMatmulDescSetAttribute(TRANSB)");
  check_blas(cublasLtMatrixLayoutCreate(&d.a, in_type, uint64_t(K), uint64_t(N), K), "layout of W");
  check_blas(cublasLtMatrixLayoutCreate(&d.b, in_type, uint64_t(K), uint64_t(M), K), "layout of x");
  check_blas(cublasLtMatrixLayoutCreate(&d.c, CUDA_R_32F, uint64_t(N), uint64_t(M), ldy), "layout of y");
  check_blas(cublasLtMatmulPreferenceCreate(&d.pref), "cublasLtMatmulPreferenceCreate");
  const size_t ws = kWorkspaceBytes;
  check_blas(
      cublasLtMatmulPreferenceSetAttribute(d.pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws),
      "cublasLtMatmulPreferenceSetAttribute");
  cublasLtMatmulHeuristicResult_t result{};
  int found = 0;
  check_blas(cublasLtMatmulAlgoGetHeuristic(h.handle, d.op, d.a, d.b, d.c, d.c, d.pref, 1, &result, &found),
             "cublasLtMatmulAlgoGetHeuristic");
  if (found == 0)
    throw Error("cuda gemm_xwt: cuBLASLt has no algorithm for " + std::to_string(M) + " x " +
                std::to_string(N) + " x " + std::to_string(K));
  const float alpha = 1.0f, beta = accumulate ? 1.0f : 0.0f;
  check_blas(cublasLtMatmul(h.handle, d.op, &alpha, w, d.a, x, d.b, &beta, y, d.c, y, d.c, &result.algo,
                            h.workspace.get(), ws, stream),
             "cublasLtMatmul");
}

}  // namespace

void gemm_xwt(const float* x, int64_t M, int64_t K, const float* w, int64_t N, float* y, int64_t ldy,
              bool accumulate, cudaStream_t stream) {
  matmul(CUDA_R_32F, x, M, K, w, N, y, ldy, accumulate, stream);
}

void gemm_xwt(const __nv_bfloat16* x, int64_t M, int64_t K, const __nv_bfloat16* w, int64_t N, float* y,
              int64_t ldy, bool accumulate, cudaStream_t stream) {
  matmul(CUDA_R_16BF, x, M, K, w, N, y, ldy, accumulate, stream);
}

}  // namespace krea2::cuda
