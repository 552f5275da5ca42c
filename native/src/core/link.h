// The transport seam: a reliable, ordered, authenticated byte stream to one peer. Algorithms move
// bytes through a Link and never see what carries them (TCP today; shared memory may follow).
// A Link is used by one thread at a time; its owner drives it from a poll loop.
#pragma once
#include <sys/uio.h>

#include <cstddef>
#include <memory>

#include "socket.h"

namespace ringtrain {

class Link {
 public:
  virtual ~Link() = default;
  // Non-blocking gather write: bytes taken, 0 when it would block, -1 with *err on failure.
  virtual long write(const iovec* iov, int count, int* err) = 0;
  // Non-blocking read: bytes read, 0 when it would block, -1 with *err (0 = the peer closed).
  virtual long read(void* buf, size_t len, int* err) = 0;
  // What the owner's poll loop waits on (readable / writable). Only the loop looks at it.
  virtual int waitHandle() const = 0;
  // No more writes from this end; the peer reads the end of the stream after what was sent.
  virtual void shutdownWrite() = 0;
};

class TcpLink : public Link {
 public:
  explicit TcpLink(Socket s) : s_(std::move(s)) {}
  long write(const iovec* iov, int count, int* err) override;
  long read(void* buf, size_t len, int* err) override;
  int waitHandle() const override { return s_.fd(); }
  void shutdownWrite() override;

 private:
  Socket s_;
};

}  // namespace ringtrain
