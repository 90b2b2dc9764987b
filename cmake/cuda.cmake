# cuda.cmake — the optional GPU backend (docs/gpu.md), included by the top
# CMakeLists.txt once shardrec_lib exists.
#
# SHARDREC_CUDA / SHARDREC_NCCL: AUTO, ON (fail when missing) or OFF. Sets the
# CMake variables SHARDREC_HAVE_CUDA and SHARDREC_HAVE_NCCL; when on, the same
# names are PUBLIC compile definitions of shardrec_lib and src/cuda/*.cu are
# built into it. When off the library gets src/cuda/no_cuda.c, which answers
# every device request with "built without CUDA", and nothing else changes.
set(SHARDREC_HAVE_CUDA OFF)
set(SHARDREC_HAVE_NCCL OFF)

if(NOT SHARDREC_CUDA STREQUAL "OFF")
  include(CheckLanguage)
  # The toolkit's usual home, for shells whose PATH lacks it.
  if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX} AND EXISTS /usr/local/cuda/bin/nvcc)
    set(CMAKE_CUDA_COMPILER /usr/local/cuda/bin/nvcc CACHE FILEPATH "CUDA compiler")
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # H100/H200 code (sm_90) plus compute_90 PTX, which newer GPUs JIT-compile.
    set(CMAKE_CUDA_ARCHITECTURES 90 CACHE STRING "CUDA architectures (90 = sm_90 code + PTX)")
    enable_language(CUDA)
    set(CMAKE_CUDA_STANDARD 17)
    set(CMAKE_CUDA_STANDARD_REQUIRED ON)
    find_package(CUDAToolkit)
    if(CUDAToolkit_FOUND AND TARGET CUDA::cublas AND TARGET CUDA::cusparse)
      set(SHARDREC_HAVE_CUDA ON)
    endif()
  endif()
  if(SHARDREC_CUDA STREQUAL "ON" AND NOT SHARDREC_HAVE_CUDA)
    message(FATAL_ERROR "SHARDREC_CUDA=ON but nvcc, cuBLAS or cuSPARSE was not found "
                        "(set CUDAToolkit_ROOT or CMAKE_CUDA_COMPILER, or use -DSHARDREC_CUDA=OFF)")
  endif()
endif()

if(SHARDREC_HAVE_CUDA AND NOT SHARDREC_NCCL STREQUAL "OFF")
  find_path(NCCL_INCLUDE_DIR nccl.h HINTS ${CUDAToolkit_INCLUDE_DIRS} PATHS /usr/include)
  find_library(NCCL_LIBRARY nccl HINTS ${CUDAToolkit_LIBRARY_DIR} PATHS /usr/lib/x86_64-linux-gnu)
  if(NCCL_INCLUDE_DIR AND NCCL_LIBRARY)
    set(SHARDREC_HAVE_NCCL ON)
  endif()
endif()
if(SHARDREC_NCCL STREQUAL "ON" AND NOT SHARDREC_HAVE_NCCL)
  message(FATAL_ERROR "SHARDREC_NCCL=ON but NCCL (nccl.h, libnccl) or CUDA was not found")
endif()
message(STATUS "shardrec GPU backend: CUDA ${SHARDREC_HAVE_CUDA}, NCCL ${SHARDREC_HAVE_NCCL}")

if(NOT SHARDREC_HAVE_CUDA)
  target_sources(shardrec_lib PRIVATE ${PROJECT_SOURCE_DIR}/src/cuda/no_cuda.c)
  return()
endif()

file(GLOB SHARDREC_CUDA_SOURCES CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/src/cuda/*.cu)
target_sources(shardrec_lib PRIVATE ${SHARDREC_CUDA_SOURCES})
# The library was defined before CUDA was enabled: give it the architectures now.
set_target_properties(shardrec_lib PROPERTIES CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}")
target_compile_definitions(shardrec_lib PUBLIC SHARDREC_HAVE_CUDA=1)
# The host compiler's warnings as for C; with SHARDREC_WERROR, nvcc's own
# warnings and the host compiler's are errors, as for C.
target_compile_options(shardrec_lib PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
if(SHARDREC_WERROR)
  target_compile_options(shardrec_lib PRIVATE $<$<COMPILE_LANGUAGE:CUDA>:--Werror=all-warnings -Xcompiler=-Werror>)
endif()
target_link_libraries(shardrec_lib PUBLIC CUDA::cudart CUDA::cublas CUDA::cusparse)
if(SHARDREC_HAVE_NCCL)
  target_compile_definitions(shardrec_lib PUBLIC SHARDREC_HAVE_NCCL=1)
  target_include_directories(shardrec_lib PRIVATE ${NCCL_INCLUDE_DIR})
  target_link_libraries(shardrec_lib PUBLIC ${NCCL_LIBRARY})
endif()
