#include <cstdio>
int main() { std::puts("llm-caching " LLMC_VERSION); return 0; }
