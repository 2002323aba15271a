# cachefs-latency-proxy: a delaying TCP proxy between loopback addresses,
# for the end-to-end tests and benchmarks (tests/integration, sshfs-export.sh).
add_executable(cachefs-latency-proxy
               ${CMAKE_CURRENT_LIST_DIR}/latency_proxy.cc)
target_link_libraries(cachefs-latency-proxy PRIVATE absl::synchronization
                      absl::strings Threads::Threads)
