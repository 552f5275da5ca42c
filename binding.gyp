{
  "targets": [
    {
      "target_name": "ringtrain",
      "sources": [
        "native/src/addon/addon.cpp",
        "native/src/addon/communicator_binding.cpp",
        "native/src/addon/device_binding.cpp",
        "native/cuda/device_allreduce.cpp",
        "native/cuda/device_api_common.cpp",
        "native/cuda/device_api_stub.cpp",
        "native/src/core/communicator.cpp",
        "native/src/core/control_parser.cpp",
        "native/src/core/hmac_sha256.cpp",
        "native/src/core/group_collectives.cpp",
        "native/src/core/link.cpp",
        "native/src/core/p2p_engine.cpp",
        "native/src/core/reduce_kernels.cpp",
        "native/src/core/ring.cpp",
        "native/src/core/ring_connector.cpp",
        "native/src/core/socket.cpp"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")", "native/src/core", "native/cuda"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED", "RINGTRAIN_BUILD_SYSTEM=\"node-gyp\""],
      "cflags!": ["-fno-exceptions", "-O2"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++1y", "-std=gnu++17"],
      "cflags": ["-O3"],
      "cflags_cc": ["-std=c++17", "-fexceptions", "-O3"]
    }
  ]
}
