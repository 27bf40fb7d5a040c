#include "support/test_env.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

namespace llmc_test {

TempDir::TempDir() {
  std::string pattern = (std::filesystem::temp_directory_path() / "llmc-test-XXXXXX").string();
  if (!::mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

TempDir::~TempDir() {
  if (path_.empty()) return;
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

TempDir::TempDir(TempDir&& other) noexcept : path_(std::exchange(other.path_, {})) {}

ShellResult run_shell(const std::string& command) {
  ShellResult result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) return result;
  char buffer[4096];
  while (const std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) {
    result.output.append(buffer, n);
  }
  const int status = ::pclose(pipe);
  result.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

std::uint16_t free_tcp_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("socket() failed");
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    ::close(fd);
    throw std::runtime_error("cannot bind a loopback port");
  }
  ::close(fd);
  return ntohs(address.sin_port);
}

ScopedEnv::ScopedEnv(std::string name, std::optional<std::string> value) : name_(std::move(name)) {
  if (const char* old = std::getenv(name_.c_str())) old_ = old;
  if (value) {
    ::setenv(name_.c_str(), value->c_str(), 1);
  } else {
    ::unsetenv(name_.c_str());
  }
}

ScopedEnv::~ScopedEnv() {
  if (old_) {
    ::setenv(name_.c_str(), old_->c_str(), 1);
  } else {
    ::unsetenv(name_.c_str());
  }
}

namespace {

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

void run_openssl(const TempDir& dir, const std::string& arguments) {
  const std::string log = dir.file("openssl.log");
  const std::string command =
      "cd '" + dir.path().string() + "' && openssl " + arguments + " > '" + log + "' 2>&1";
  if (std::system(command.c_str()) != 0) {
    std::ifstream in(log);
    std::stringstream output;
    output << in.rdbuf();
    throw std::runtime_error("openssl " + arguments + " failed:\n" + output.str());
  }
}

}  // namespace

TestCertificates make_test_certificates(std::vector<std::string> subject_alt_names) {
  TestCertificates certs;
  const TempDir& dir = certs.dir;
  std::string alt_names;
  for (const auto& name : subject_alt_names) alt_names += (alt_names.empty() ? "" : ",") + name;
  write_file(dir.file("ca.cnf"),
             "[req]\ndistinguished_name = dn\nx509_extensions = v3_ca\nprompt = no\n"
             "[dn]\nCN = llm-caching test CA\n"
             "[v3_ca]\nbasicConstraints = critical,CA:TRUE\n"
             "keyUsage = critical,keyCertSign,cRLSign\nsubjectKeyIdentifier = hash\n");
  write_file(dir.file("server.cnf"),
             "[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nCN = llm-caching test server\n");
  write_file(dir.file("server_ext.cnf"),
             "[v3_server]\nbasicConstraints = CA:FALSE\nkeyUsage = critical,digitalSignature\n"
             "extendedKeyUsage = serverAuth\nsubjectAltName = " +
                 alt_names + "\nauthorityKeyIdentifier = keyid\n");
  const std::string ec_key = "-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes";
  run_openssl(dir, "req -x509 -config ca.cnf " + ec_key + " -keyout ca.key -out ca.pem -days 2");
  run_openssl(dir, "req -new -config server.cnf " + ec_key + " -keyout server.key -out server.csr");
  run_openssl(dir,
              "x509 -req -in server.csr -CA ca.pem -CAkey ca.key -set_serial 1 -days 2 "
              "-extfile server_ext.cnf -extensions v3_server -out server.pem");
  certs.ca_cert = dir.file("ca.pem");
  certs.server_cert = dir.file("server.pem");
  certs.server_key = dir.file("server.key");
  return certs;
}

}  // namespace llmc_test
