# Turns a text file into a C++ translation unit defining
#   std::string_view llm_caching::detail::default_costs_json();
# Run with -DINPUT=... -DOUTPUT=...
file(READ ${INPUT} content)
# Raw string literal pieces stay well under compiler limits.
string(LENGTH "${content}" len)
set(chunks "")
set(pos 0)
while(pos LESS len)
  string(SUBSTRING "${content}" ${pos} 8000 piece)
  string(APPEND chunks "R\"llmc(${piece})llmc\"\n")
  math(EXPR pos "${pos} + 8000")
endwhile()
file(WRITE ${OUTPUT} "// Generated from data/model_costs.json by cmake/embed_text.cmake. Do not edit.\n#include <string_view>\nnamespace llm_caching::detail {\nstd::string_view default_costs_json() {\n  static constexpr char text[] =\n${chunks};\n  return {text, sizeof(text) - 1};\n}\n}  // namespace llm_caching::detail\n")
