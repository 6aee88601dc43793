# protoc-c names a service struct's members after the methods, lower-cased,
# so UserService/Register yields a member `register`, a C keyword.  Rename
# that member to `register_` in HEADER.  The wire name stays "Register"
# (it comes from the service descriptor, which this does not touch).
file(READ ${HEADER} text)
string(REPLACE "(*register)(" "(*register_)(" text "${text}")
string(REPLACE "## register," "## register_," text "${text}")
file(WRITE ${HEADER} "${text}")
