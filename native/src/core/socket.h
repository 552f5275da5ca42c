// TCP sockets: an owning fd wrapper, listen/connect and non-blocking send/recv. Nothing here waits
// for a peer (addresses are numeric, connects complete in the background): the handshake
// (ring_connector) and the collectives (ring) drive these with poll() under their own deadlines.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace ringtrain {

class Socket {
 public:
  Socket() = default;
  explicit Socket(int fd) : fd_(fd) {}
  ~Socket() { reset(); }
  Socket(Socket&& o) noexcept : fd_(o.fd_) { o.fd_ = -1; }
  Socket& operator=(Socket&& o) noexcept {
    if (this != &o) {
      reset();
      fd_ = o.fd_;
      o.fd_ = -1;
    }
    return *this;
  }
  Socket(const Socket&) = delete;
  Socket& operator=(const Socket&) = delete;

  int fd() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  void reset();

 private:
  int fd_ = -1;
};

// Binds a non-blocking listener on `host` (numeric address; "" = all) at the first free port in
// [portMin, portMax] (0, 0 = any). Returns the bound port through `port`.
Socket listenTcp(const std::string& host, int portMin, int portMax, int* port);

// Starts a non-blocking connect; completion is seen as POLLOUT then checked with socketError().
Socket startConnect(const std::string& host, int port);
int socketError(int fd);

void setNonBlocking(int fd);
// TCP_NODELAY and keepalive. Buffer sizes stay with the kernel's autotuning, which on Linux grows
// further than a fixed size the unprivileged cap allows.
void tuneSocket(int fd);

// "addr:port" of the remote end, for messages.
std::string peerName(int fd);

// Non-blocking send/recv: bytes moved, 0 when the call would block; throws nothing, returns -1 and
// sets *err on a real error (EOF from recv is reported as -1 with *err = 0).
long sendSome(int fd, const void* buf, size_t len, int* err);
long recvSome(int fd, void* buf, size_t len, int* err);

}  // namespace ringtrain
