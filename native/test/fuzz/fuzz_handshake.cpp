// libFuzzer target: the acceptor side of the ring handshake, through real loopback sockets.
// Each input is what a stranger sends to a forming rank's ring listener (then, per the first
// byte, it half-closes or stays silent). RingConnector::establish runs for a few milliseconds, as
// it does while a ring forms, and must:
//   - never crash, hang past its deadline, or throw anything but the CommError of a ring that did
//     not form (the real neighbours never come here);
//   - never answer the stranger with "Ok": without the job token no byte sequence may pass;
//   - answer at most a Challenge then an AuthFailed/Unexpected status, and log at most one line
//     for the connection.
// It runs at a few hundred inputs a second (one connection and one establish() each). A pure
// handshake state machine factored out of ring_connector.cpp would make this much faster; the
// socket path is what ships, so it is what is fuzzed here.
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "clock.h"
#include "comm_error.h"
#include "ring_connector.h"
#include "socket.h"
#include "wire_format.h"

using namespace ringtrain;

namespace {

void require(bool ok, const std::string& what) {
  if (!ok) {
    std::fprintf(stderr, "fuzz_handshake: invariant broken: %s\n", what.c_str());
    std::abort();
  }
}

struct Fixture {
  Socket listener;
  int port = 0;
  int deadPort = 0;  // a port nothing listens on: this rank's own dial to its right neighbour fails fast
  std::vector<std::string> logs;

  Fixture() {
    listener = listenTcp("127.0.0.1", 0, 0, &port);
    int p = 0;
    Socket tmp = listenTcp("127.0.0.1", 0, 0, &p);
    deadPort = p;  // closed again when tmp goes out of scope
  }
};

Fixture& fixture() {
  static Fixture* f = new Fixture();
  return *f;
}

int connectTo(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    // A signal (libFuzzer's timers) can interrupt a blocking connect; the connection then
    // completes in the background: wait for it instead of calling it broken.
    int err = errno;
    if (err == EINTR) {
      pollfd p = {fd, POLLOUT, 0};
      socklen_t len = sizeof err;
      if (::poll(&p, 1, 2000) == 1 && ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) == 0 && err == 0) return fd;
    }
    ::close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = fixture();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  data++;
  size--;

  int client = connectTo(f.port);
  require(client >= 0, std::string("cannot connect to the listener: ") + std::strerror(errno));
  size_t off = 0;
  while (off < size) {
    ssize_t n = ::send(client, data + off, size - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  if (mode & 1) ::shutdown(client, SHUT_WR);

  // This rank is rank 1 of 2; rank 0 (its right and left neighbour) is at a dead port.
  std::vector<PeerAddress> peers = {{"127.0.0.1", f.deadPort, "fuzz-peer"}, {"127.0.0.1", f.port, "fuzz-self"}};
  f.logs.clear();
  RingConnector connector(1, 2, "the job token", peers, [&](const std::string& line) { f.logs.push_back(line); });
  std::atomic<bool> cancel{false};
  const int64_t start = nowMs();
  try {
    connector.establish(f.listener, start + 5, cancel);
    require(false, "the ring formed with a stranger");
  } catch (const CommError& e) {
    require(e.code() == ErrorCode::Timeout, std::string("unexpected error from establish: ") + e.what());
  }
  require(nowMs() - start < 2000, "establish overran its deadline");

  // What did the stranger get back?
  uint8_t reply[256];
  size_t have = 0;
  for (;;) {
    ssize_t n = ::recv(client, reply + have, sizeof reply - have, MSG_DONTWAIT);
    if (n <= 0 || have + static_cast<size_t>(n) >= sizeof reply) break;
    have += static_cast<size_t>(n);
  }
  ::close(client);
  require(have == 0 || have == wire::Challenge::kSize || have == wire::Challenge::kSize + wire::kAckSize,
          "unexpected reply length " + std::to_string(have));
  if (have >= wire::Challenge::kSize) require(wire::get32(reply) == wire::kChallengeMagic, "reply is not a Challenge");
  if (have == wire::Challenge::kSize + wire::kAckSize) {
    require(wire::get32(reply + wire::Challenge::kSize) != static_cast<uint32_t>(wire::AckStatus::Ok),
            "a stranger without the token was told Ok");
  }
  require(f.logs.size() <= 1, "more than one log line for one connection");

  // Connections establish() did not get to (it ran out of time) must not leak into the next input.
  for (;;) {
    int fd = ::accept4(f.listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) break;
    ::close(fd);
  }
  return 0;
}
