# ringtrain's CUDA data path (native/cuda), for the top-level CMakeLists.txt:
#
#   include(cmake/cuda.cmake)           # after add_library(ringtrain_core STATIC ...) and the addon
#   target_link_libraries(ringtrain PRIVATE ringtrain_cuda)       # the addon; never the core
#
# Provides
#   ringtrain_cuda            static library: the CUDA implementation, or the stub that throws
#                             "built without CUDA", plus the core's DeviceReducer over it
#                             (device_allreduce.cpp); its users get native/cuda on the include path
#                             and, in the CUDA build only, RINGTRAIN_HAVE_CUDA=1 (test it with
#                             #ifdef: it is not defined at all in a CPU-only build).
#   RINGTRAIN_CUDA_ENABLED    ON when the CUDA implementation is built.
#   ringtrain_cuda_batched_copy  the batched copy, which only the tests and bench use (EXCLUDE_FROM_ALL)
#   ringtrain_cuda_test, ringtrain_cuda_logic_test, ringtrain_cuda_bench (EXCLUDE_FROM_ALL; build
#                             them by name or through the ringtrain_cuda_checks target).
#
# Option RINGTRAIN_CUDA = AUTO (default: CUDA when a CUDA compiler is found) | ON (required) | OFF
# (CPU only). Without -D, the environment variable RINGTRAIN_CUDA picks the default.
#
# One binary for machines with and without a GPU: the CUDA runtime is linked statically
# (cudart_static) and loads the driver (libcuda.so.1) at run time; without a driver or GPU every
# device call fails with a clear CudaError and the CPU path is untouched. Code is built for
# sm_75..sm_90 plus compute_90 PTX, which newer GPUs (Blackwell, ...) JIT-compile at load.

include_guard(GLOBAL)

if(NOT DEFINED CACHE{RINGTRAIN_CUDA} AND DEFINED ENV{RINGTRAIN_CUDA})
  set(_rt_cuda_default "$ENV{RINGTRAIN_CUDA}")
else()
  set(_rt_cuda_default "AUTO")
endif()
set(RINGTRAIN_CUDA "${_rt_cuda_default}" CACHE STRING
    "Build the CUDA data path: AUTO (when a CUDA compiler is found), ON (required) or OFF")
set_property(CACHE RINGTRAIN_CUDA PROPERTY STRINGS AUTO ON OFF)

string(TOUPPER "${RINGTRAIN_CUDA}" _rt_cuda_mode)
if(_rt_cuda_mode MATCHES "^(ON|TRUE|YES|1|REQUIRED)$")
  set(_rt_cuda_mode ON)
elseif(_rt_cuda_mode MATCHES "^(OFF|FALSE|NO|0)$")
  set(_rt_cuda_mode OFF)
elseif(NOT _rt_cuda_mode STREQUAL "AUTO")
  message(FATAL_ERROR "RINGTRAIN_CUDA must be AUTO, ON or OFF, not '${RINGTRAIN_CUDA}'")
endif()

set(RINGTRAIN_CUDA_ENABLED OFF)
if(NOT _rt_cuda_mode STREQUAL "OFF")
  # nvcc 13 dropped sm_50..sm_72; Hopper gets its own SASS; compute_90 PTX serves anything newer.
  if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
    set(CMAKE_CUDA_ARCHITECTURES "75-real;80-real;86-real;89-real;90-real;90-virtual")
  endif()
  if(NOT DEFINED CMAKE_CUDA_HOST_COMPILER AND CMAKE_CXX_COMPILER)
    set(CMAKE_CUDA_HOST_COMPILER "${CMAKE_CXX_COMPILER}")
  endif()
  include(CheckLanguage)
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
    find_package(CUDAToolkit REQUIRED)
    set(RINGTRAIN_CUDA_ENABLED ON)
  elseif(_rt_cuda_mode STREQUAL "ON")
    message(FATAL_ERROR
      "RINGTRAIN_CUDA=ON but no CUDA compiler was found: put nvcc on PATH, or set CUDACXX, "
      "or configure with -DRINGTRAIN_CUDA=OFF for a CPU-only build")
  endif()
endif()

set(_rt_cuda_dir "${CMAKE_CURRENT_LIST_DIR}/../native/cuda")
get_filename_component(_rt_cuda_dir "${_rt_cuda_dir}" ABSOLUTE)

if(RINGTRAIN_CUDA_ENABLED)
  add_library(ringtrain_cuda STATIC
    ${_rt_cuda_dir}/device_api_common.cpp
    ${_rt_cuda_dir}/device_allreduce.cpp
    ${_rt_cuda_dir}/runtime.cpp
    ${_rt_cuda_dir}/device_memory.cpp
    ${_rt_cuda_dir}/device_stager.cpp
    ${_rt_cuda_dir}/elementwise.cu)
  string(REPLACE ";" "," _rt_cuda_archs "${CMAKE_CUDA_ARCHITECTURES}")
  set_target_properties(ringtrain_cuda PROPERTIES
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
    CUDA_RUNTIME_LIBRARY Static
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON)
  target_compile_definitions(ringtrain_cuda
    PUBLIC RINGTRAIN_HAVE_CUDA=1
    PRIVATE RINGTRAIN_CUDA_ARCHS="${_rt_cuda_archs}")
  target_link_libraries(ringtrain_cuda PUBLIC CUDA::cudart_static)
  message(STATUS "ringtrain: CUDA data path ON (nvcc ${CMAKE_CUDA_COMPILER_VERSION}, "
                 "architectures ${CMAKE_CUDA_ARCHITECTURES}, static CUDA runtime)")
else()
  add_library(ringtrain_cuda STATIC
    ${_rt_cuda_dir}/device_api_common.cpp
    ${_rt_cuda_dir}/device_allreduce.cpp
    ${_rt_cuda_dir}/device_api_stub.cpp)
  if(_rt_cuda_mode STREQUAL "OFF")
    set(_rt_why "RINGTRAIN_CUDA=${RINGTRAIN_CUDA}")
  else()
    set(_rt_why "no CUDA compiler found, RINGTRAIN_CUDA=${RINGTRAIN_CUDA}")
  endif()
  message(STATUS "ringtrain: CUDA data path OFF (${_rt_why}); "
                 "the device API reports 'built without CUDA'")
endif()
set_target_properties(ringtrain_cuda PROPERTIES
  POSITION_INDEPENDENT_CODE ON
  CXX_STANDARD 17
  CXX_STANDARD_REQUIRED ON
  CXX_VISIBILITY_PRESET hidden
  CUDA_VISIBILITY_PRESET hidden
  VISIBILITY_INLINES_HIDDEN ON)
target_include_directories(ringtrain_cuda PUBLIC "${_rt_cuda_dir}")
# The DeviceReducer side depends on the core's headers (dtype, errors, the hook), never the reverse.
target_include_directories(ringtrain_cuda PRIVATE "${_rt_cuda_dir}/../src/core")

# The addon sees the build's CUDA status even before it links ringtrain_cuda.
if(TARGET ringtrain AND RINGTRAIN_CUDA_ENABLED)
  target_compile_definitions(ringtrain PUBLIC RINGTRAIN_HAVE_CUDA=1)
endif()
# Keep the static CUDA runtime's symbols private to the addon, so that a libcudart.so another
# module loaded (tfjs-node-gpu, ...) can neither interpose on ours nor be interposed on.
if(RINGTRAIN_CUDA_ENABLED AND TARGET ringtrain AND NOT APPLE AND NOT WIN32)
  target_link_options(ringtrain PRIVATE "LINKER:--exclude-libs,ALL")
endif()

# Tests and bench: not part of the default build (npm install / prebuildify never compile them).
# The batched copy (batched_copy.h) serves only them: the addon never calls it, so it is a library
# of its own that only they link.
if(RINGTRAIN_CUDA_ENABLED)
  add_library(ringtrain_cuda_batched_copy STATIC EXCLUDE_FROM_ALL
    ${_rt_cuda_dir}/batched_copy.cu
    ${_rt_cuda_dir}/batched_copy_layout.cpp)
  set_target_properties(ringtrain_cuda_batched_copy PROPERTIES
    CUDA_ARCHITECTURES "${CMAKE_CUDA_ARCHITECTURES}"
    CUDA_RUNTIME_LIBRARY Static
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON)
else()
  add_library(ringtrain_cuda_batched_copy STATIC EXCLUDE_FROM_ALL
    ${_rt_cuda_dir}/batched_copy_stub.cpp
    ${_rt_cuda_dir}/batched_copy_layout.cpp)
endif()
set_target_properties(ringtrain_cuda_batched_copy PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
target_link_libraries(ringtrain_cuda_batched_copy PUBLIC ringtrain_cuda)

add_executable(ringtrain_cuda_logic_test EXCLUDE_FROM_ALL
  ${_rt_cuda_dir}/test/cuda_logic_test.cpp
  ${_rt_cuda_dir}/device_api_common.cpp
  ${_rt_cuda_dir}/batched_copy_layout.cpp)
target_include_directories(ringtrain_cuda_logic_test PRIVATE "${_rt_cuda_dir}")
set_target_properties(ringtrain_cuda_logic_test PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)

add_executable(ringtrain_cuda_test EXCLUDE_FROM_ALL ${_rt_cuda_dir}/test/cuda_test.cpp)
target_link_libraries(ringtrain_cuda_test PRIVATE ringtrain_cuda_batched_copy)
set_target_properties(ringtrain_cuda_test PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)

add_custom_target(ringtrain_cuda_checks DEPENDS ringtrain_cuda_logic_test ringtrain_cuda_test)
if(RINGTRAIN_CUDA_ENABLED)
  add_executable(ringtrain_cuda_bench EXCLUDE_FROM_ALL ${_rt_cuda_dir}/bench/cuda_bench.cpp)
  target_link_libraries(ringtrain_cuda_bench PRIVATE ringtrain_cuda_batched_copy)
  set_target_properties(ringtrain_cuda_bench PROPERTIES CXX_STANDARD 17 CXX_STANDARD_REQUIRED ON)
  add_dependencies(ringtrain_cuda_checks ringtrain_cuda_bench)
endif()

add_test(NAME ringtrain_cuda_logic_test COMMAND ringtrain_cuda_logic_test)
add_test(NAME ringtrain_cuda_test COMMAND ringtrain_cuda_test)
