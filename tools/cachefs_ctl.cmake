add_executable(cachefs-ctl ${CMAKE_CURRENT_LIST_DIR}/cachefs_ctl.cc
                           ${CMAKE_CURRENT_LIST_DIR}/ctl_top.cc)
target_link_libraries(cachefs-ctl PRIVATE cachefs_core)
install(TARGETS cachefs-ctl RUNTIME DESTINATION bin)
