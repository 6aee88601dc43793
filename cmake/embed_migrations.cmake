# Writes OUT: a C array of {name, sql} for every migration file in FILES,
# so vgen-server carries its schema and needs no path at run time.
set(body "/* generated from the migrations folder: do not edit */\n#include <stddef.h>\n")
string(APPEND body "#include \"store.h\"\n\nconst struct store_migration store_migrations[] = {\n")
# FILES is "|"-separated: a ";" list would be split on the command line.
string(REPLACE "|" ";" FILES "${FILES}")
foreach(f ${FILES})
  get_filename_component(name ${f} NAME)
  file(READ ${f} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "\\\\x\\1" esc "${hex}")
  # split the literal so no single line is huge
  string(REGEX REPLACE "((\\\\x[0-9a-f][0-9a-f]){32})" "\\1\"\n\"" esc "${esc}")
  string(APPEND body "\t{ \"${name}\",\n\"${esc}\" },\n")
endforeach()
string(APPEND body "\t{ NULL, NULL },\n};\n")
file(WRITE ${OUT} "${body}")
