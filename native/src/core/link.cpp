#include "link.h"

#include <errno.h>
#include <sys/socket.h>

namespace ringtrain {

long TcpLink::write(const iovec* iov, int count, int* err) {
  msghdr m{};
  m.msg_iov = const_cast<iovec*>(iov);
  m.msg_iovlen = static_cast<size_t>(count);
  for (;;) {
    ssize_t n = ::sendmsg(s_.fd(), &m, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0) return static_cast<long>(n);
    if (errno == EINTR) continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    *err = errno;
    return -1;
  }
}

void TcpLink::shutdownWrite() { ::shutdown(s_.fd(), SHUT_WR); }

long TcpLink::read(void* buf, size_t len, int* err) { return recvSome(s_.fd(), buf, len, err); }

}  // namespace ringtrain
