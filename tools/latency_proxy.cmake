# cachefs-latency-proxy: a delaying TCP proxy between loopback addresses,
# for the end-to-end tests and benchmarks (tests/integration, sshfs-export.sh).
add_executable(cachefs-latency-proxy
               ${CMAKE_CURRENT_LIST_DIR}/latency_proxy.cc)
target_link_libraries(cachefs-latency-proxy PRIVATE absl::synchronization
                      absl::strings Threads::Threads)
# Debian's abseil is built without ThreadSanitizer; cachefs_io carries the
# shim that makes absl::Mutex visible to it (io/tsan_absl_sync.cc).
if(CACHEFS_SANITIZE MATCHES "thread")
  target_link_libraries(cachefs-latency-proxy PRIVATE cachefs_io)
endif()
