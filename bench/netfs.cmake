add_executable(nfs_read_depth ${CMAKE_CURRENT_LIST_DIR}/nfs_read_depth.cc)
target_link_libraries(nfs_read_depth PRIVATE PkgConfig::LIBNFS)
add_executable(nfs_origin_depth ${CMAKE_CURRENT_LIST_DIR}/nfs_origin_depth.cc)
target_link_libraries(nfs_origin_depth PRIVATE cachefs_netfs)
