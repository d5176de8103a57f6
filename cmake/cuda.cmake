# The CUDA backend (src/cuda/: device buffers, cuBLASLt GEMMs, attention and element-wise kernels), built as
# its own library, krea2cuda, when nvcc is found (KREA2_CUDA, default ON then). Nothing else links it yet: the
# CPU build, the CLI and the C API are the same with or without it, and its tests (tests/test_cuda_ops.cpp)
# skip with a message on a machine without a GPU. sm_90 code plus PTX (CMAKE_CUDA_ARCHITECTURES 90) unless
# given.
include(CheckLanguage)
check_language(CUDA)
# ON by default only where nvcc works and the toolkit has what the backend links (so a machine with a partial
# toolkit still configures, without the backend); an explicit -DKREA2_CUDA=ON insists.
set(KREA2_CUDA_DEFAULT OFF)
if(CMAKE_CUDA_COMPILER)
  find_package(CUDAToolkit QUIET)
  if(TARGET CUDA::cublasLt AND TARGET CUDA::cudart_static)
    set(KREA2_CUDA_DEFAULT ON)
  else()
    message(STATUS "nvcc found, but not cuBLASLt and the static CUDA runtime: the CUDA backend is off")
  endif()
endif()
option(KREA2_CUDA "Build the CUDA backend (needs nvcc and the CUDA toolkit)" ${KREA2_CUDA_DEFAULT})

if(KREA2_CUDA)
  if(NOT CMAKE_CUDA_COMPILER)
    message(FATAL_ERROR "KREA2_CUDA is ON but no CUDA compiler (nvcc) was found; set CMAKE_CUDA_COMPILER")
  endif()
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES 90)
  endif()
  enable_language(CUDA)
  find_package(CUDAToolkit REQUIRED)
  if(NOT TARGET CUDA::cublasLt OR NOT TARGET CUDA::cudart_static)
    message(FATAL_ERROR "KREA2_CUDA: the CUDA toolkit at ${CUDAToolkit_LIBRARY_DIR} lacks cuBLASLt or the static "
                        "runtime (libcublasLt, libcudart_static); install them or configure with -DKREA2_CUDA=OFF")
  endif()
  set(CMAKE_CUDA_STANDARD 17)
  set(CMAKE_CUDA_STANDARD_REQUIRED ON)
  file(GLOB KREA2_CUDA_SOURCES CONFIGURE_DEPENDS src/cuda/*.cu src/cuda/*.cpp)
  add_library(krea2cuda STATIC ${KREA2_CUDA_SOURCES})
  target_include_directories(krea2cuda PUBLIC include src)
  target_compile_options(krea2cuda PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  # The static runtime: binaries need no libcudart at run time; cuBLASLt is loaded from the toolkit.
  target_link_libraries(krea2cuda PUBLIC krea2core CUDA::cudart_static CUDA::cublasLt)
  message(STATUS "CUDA ${CUDAToolkit_VERSION}: building the CUDA backend for ${CMAKE_CUDA_ARCHITECTURES}")
else()
  message(STATUS "CUDA backend not built (no nvcc found, or KREA2_CUDA=OFF)")
endif()
