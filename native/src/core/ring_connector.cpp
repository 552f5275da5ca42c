#include "ring_connector.h"

#include <errno.h>
#include <poll.h>
#include <sys/random.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "clock.h"
#include "comm_error.h"
#include "hmac_sha256.h"
#include "wire_format.h"

namespace ringtrain {

std::string describePeer(int rank, const PeerAddress& p) {
  std::string where = p.host.find(':') != std::string::npos ? "[" + p.host + "]" : p.host;
  where += ":" + std::to_string(p.port);
  if (!p.hostname.empty() && p.hostname != p.host) return "rank " + std::to_string(rank) + " (" + p.hostname + ", " + where + ")";
  return "rank " + std::to_string(rank) + " (" + where + ")";
}

void randomBytes(uint8_t* out, size_t len) {
  size_t got = 0;
  while (got < len) {
    ssize_t n = getrandom(out + got, len - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw CommError(ErrorCode::Internal, std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
}

namespace {

constexpr int kMaxPendingAccepts = 64;
constexpr int64_t kHandshakeMs = 5000;  // per incoming connection: slow or silent strangers get dropped

wire::Challenge makeChallenge(const std::string& token, const wire::Hello& h, const uint8_t* acceptorNonce, char role) {
  uint8_t msg[1 + 2 * wire::kNonceBytes + 16];
  msg[0] = static_cast<uint8_t>(role);
  std::memcpy(msg + 1, h.nonce, wire::kNonceBytes);
  std::memcpy(msg + 1 + wire::kNonceBytes, acceptorNonce, wire::kNonceBytes);
  uint8_t* p = msg + 1 + 2 * wire::kNonceBytes;
  wire::put32(p, h.fromRank);
  wire::put32(p + 4, h.toRank);
  wire::put32(p + 8, h.size);
  wire::put32(p + 12, h.channel);
  wire::Challenge c;
  std::memcpy(c.nonce, acceptorNonce, wire::kNonceBytes);
  Digest d = hmacSha256(token, msg, sizeof msg);
  std::memcpy(c.mac, d.data(), wire::kMacBytes);
  return c;
}

// One handshake in progress: bytes to write, bytes expected, and which step comes next.
struct Handshake {
  Socket sock;
  bool outgoing = false;
  int stage = 0;
  std::vector<uint8_t> out;
  size_t outOff = 0;
  uint8_t in[64] = {};
  size_t have = 0;
  size_t need = 0;
  int64_t deadline = 0;
  std::string remote;
  wire::Hello hello;
  uint8_t acceptorNonce[wire::kNonceBytes] = {};

  void queue(const uint8_t* p, size_t n) { out.insert(out.end(), p, p + n); }
  void expect(size_t n) {
    have = 0;
    need = n;
  }
  bool wantsWrite() const { return outOff < out.size(); }
  bool inputReady() const { return need > 0 && have == need; }
};

// Moves bytes for one handshake; returns false with *why set when the connection broke.
bool pump(Handshake& h, short revents, std::string* why) {
  if (revents & (POLLERR | POLLNVAL)) {
    int e = socketError(h.sock.fd());
    *why = e ? std::strerror(e) : "socket error";
    return false;
  }
  if (h.wantsWrite() && (revents & POLLOUT)) {
    int err = 0;
    long n = sendSome(h.sock.fd(), h.out.data() + h.outOff, h.out.size() - h.outOff, &err);
    if (n < 0) {
      *why = std::strerror(err);
      return false;
    }
    h.outOff += static_cast<size_t>(n);
  }
  if (h.have < h.need && (revents & (POLLIN | POLLHUP))) {
    int err = 0;
    long n = recvSome(h.sock.fd(), h.in + h.have, h.need - h.have, &err);
    if (n < 0) {
      *why = err ? std::strerror(err) : "connection closed during handshake";
      return false;
    }
    h.have += static_cast<size_t>(n);
  }
  return true;
}

}  // namespace

RingConnector::RingConnector(int rank, int size, std::string token, std::vector<PeerAddress> peers, int socketBuffer, Logger log)
    : rank_(rank), size_(size), token_(std::move(token)), peers_(std::move(peers)), socketBuffer_(socketBuffer), log_(std::move(log)) {}

RingLinks RingConnector::establish(Socket& listener, int64_t deadline, const std::atomic<bool>& cancel) {
  const int rightRank = (rank_ + 1) % size_;
  const int leftRank = (rank_ + size_ - 1) % size_;
  const PeerAddress& right = peers_.at(rightRank);
  const PeerAddress& left = peers_.at(leftRank);
  RingLinks links;
  std::unique_ptr<Handshake> dial;
  int64_t nextDial = 0;
  std::string lastDialError = "not attempted";
  std::vector<std::unique_ptr<Handshake>> incoming;

  auto startDial = [&]() {
    dial = std::make_unique<Handshake>();
    dial->outgoing = true;
    dial->sock = startConnect(right.host, right.port);
    dial->deadline = deadline;
    dial->hello.fromRank = static_cast<uint32_t>(rank_);
    dial->hello.toRank = static_cast<uint32_t>(rightRank);
    dial->hello.size = static_cast<uint32_t>(size_);
    dial->hello.channel = 0;
    randomBytes(dial->hello.nonce, wire::kNonceBytes);
    dial->stage = 0;  // waiting for connect to complete
  };

  while (!links.right.valid() || !links.left.valid()) {
    if (cancel.load()) throw CommError(ErrorCode::Cancelled, "communicator closed while connecting");
    const int64_t now = nowMs();
    if (now >= deadline) {
      if (!links.right.valid()) {
        throw CommError(ErrorCode::Timeout, "timed out connecting to " + describePeer(rightRank, right) + ": " + lastDialError);
      }
      throw CommError(ErrorCode::Timeout, describePeer(leftRank, left) + " never connected to this rank (rank " +
                                              std::to_string(rank_) + ") before the timeout");
    }
    if (!links.right.valid() && !dial && now >= nextDial) startDial();

    std::vector<pollfd> fds;
    fds.push_back({listener.fd(), POLLIN, 0});
    if (dial) fds.push_back({dial->sock.fd(), static_cast<short>(dial->stage == 0 || dial->wantsWrite() ? POLLOUT : POLLIN), 0});
    for (auto& h : incoming) fds.push_back({h->sock.fd(), static_cast<short>(h->wantsWrite() ? POLLOUT | POLLIN : POLLIN), 0});
    int wait = msUntil(deadline, 100);
    if (!dial && !links.right.valid()) wait = std::min(wait, msUntil(nextDial, 100));
    int rc = ::poll(fds.data(), fds.size(), wait);
    if (rc < 0 && errno != EINTR) throw CommError(ErrorCode::Internal, std::string("poll: ") + std::strerror(errno));
    if (rc <= 0) {
      // Expire slow strangers even when nothing happens.
      for (auto& h : incoming) {
        if (h && nowMs() > h->deadline) {
          log_("rank " + std::to_string(rank_) + " dropped a connection from " + h->remote + ": handshake too slow");
          h.reset();
        }
      }
      incoming.erase(std::remove(incoming.begin(), incoming.end(), nullptr), incoming.end());
      continue;
    }

    size_t idx = 0;
    // New connections.
    if (fds[idx++].revents & POLLIN) {
      for (;;) {
        int fd = ::accept4(listener.fd(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) break;
        auto h = std::make_unique<Handshake>();
        h->sock = Socket(fd);
        h->remote = peerName(fd);
        if (static_cast<int>(incoming.size()) >= kMaxPendingAccepts) {
          log_("rank " + std::to_string(rank_) + " dropped a connection from " + h->remote + ": too many pending handshakes");
          continue;
        }
        h->deadline = std::min(deadline, nowMs() + kHandshakeMs);
        h->expect(wire::Hello::kSize);
        incoming.push_back(std::move(h));
      }
    }

    // Our outgoing handshake to the right neighbour.
    if (dial) {
      pollfd& p = fds[idx++];
      std::string why;
      bool ok = true;
      if (dial->stage == 0) {
        if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
          int e = socketError(dial->sock.fd());
          if (e != 0) {
            ok = false;
            why = std::strerror(e);
          } else {
            tuneSocket(dial->sock.fd(), socketBuffer_);
            uint8_t buf[wire::Hello::kSize];
            dial->hello.encode(buf);
            dial->queue(buf, sizeof buf);
            dial->expect(wire::Challenge::kSize);
            dial->stage = 1;
          }
        }
      } else {
        ok = pump(*dial, p.revents, &why);
      }
      if (ok && dial->inputReady()) {
        if (dial->stage == 1) {
          wire::Challenge c;
          if (!c.decode(dial->in)) {
            throw CommError(ErrorCode::Auth, describePeer(rightRank, right) + " answered with something that is not ringtrain: is another program listening there?");
          }
          wire::Challenge expected = makeChallenge(token_, dial->hello, c.nonce, 'A');
          if (!digestEqual(expected.mac, c.mac, wire::kMacBytes)) {
            throw CommError(ErrorCode::Auth, describePeer(rightRank, right) +
                                                 " could not prove it knows the job token (RINGTRAIN_TOKEN differs, or another job listens there)");
          }
          wire::Challenge proof = makeChallenge(token_, dial->hello, c.nonce, 'C');
          dial->queue(proof.mac, wire::kProofSize);
          dial->expect(wire::kAckSize);
          dial->stage = 2;
        } else if (dial->stage == 2) {
          auto status = static_cast<wire::AckStatus>(wire::get32(dial->in));
          if (status == wire::AckStatus::AuthFailed) {
            throw CommError(ErrorCode::Auth, describePeer(rightRank, right) + " rejected this rank's proof of the job token: RINGTRAIN_TOKEN differs between ranks");
          }
          if (status != wire::AckStatus::Ok) {
            throw CommError(ErrorCode::Peer, describePeer(rightRank, right) + " refused the connection (it expected a different rank or job size)");
          }
          links.right = std::move(dial->sock);
          dial.reset();
        }
      }
      if (!ok) {
        lastDialError = why;
        dial.reset();
        nextDial = nowMs() + 100;  // peer not listening yet, or refused: retry until the deadline
      }
    }

    // Incoming handshakes.
    // Connections accepted above were not polled yet: they have no entry in fds until the next round.
    for (auto& h : incoming) {
      const short revents = idx < fds.size() ? fds[idx++].revents : 0;
      std::string why;
      if (nowMs() > h->deadline) {
        log_("rank " + std::to_string(rank_) + " dropped a connection from " + h->remote + ": handshake too slow");
        h.reset();
        continue;
      }
      if (!pump(*h, revents, &why)) {
        if (h->stage > 0) log_("rank " + std::to_string(rank_) + " dropped a connection from " + h->remote + ": " + why);
        h.reset();
        continue;
      }
      if (h->stage == 3 && !h->wantsWrite()) {
        // Ack flushed: the left link is ours.
        links.left = std::move(h->sock);
        tuneSocket(links.left.fd(), socketBuffer_);
        h.reset();
        continue;
      }
      if (!h->inputReady()) continue;
      if (h->stage == 0) {
        if (!h->hello.decode(h->in) || h->hello.version != wire::kProtocolVersion) {
          log_("rank " + std::to_string(rank_) + " rejected a connection from " + h->remote + ": not a ringtrain handshake");
          h.reset();
          continue;
        }
        randomBytes(h->acceptorNonce, wire::kNonceBytes);
        wire::Challenge c = makeChallenge(token_, h->hello, h->acceptorNonce, 'A');
        uint8_t buf[wire::Challenge::kSize];
        c.encode(buf);
        h->queue(buf, sizeof buf);
        h->expect(wire::kProofSize);
        h->stage = 1;
      } else if (h->stage == 1) {
        wire::Challenge expected = makeChallenge(token_, h->hello, h->acceptorNonce, 'C');
        uint8_t ack[wire::kAckSize];
        if (!digestEqual(expected.mac, h->in, wire::kMacBytes)) {
          log_("rank " + std::to_string(rank_) + " rejected a connection from " + h->remote + ": authentication failed (wrong job token)");
          wire::put32(ack, static_cast<uint32_t>(wire::AckStatus::AuthFailed));
          ::send(h->sock.fd(), ack, sizeof ack, MSG_NOSIGNAL | MSG_DONTWAIT);
          h.reset();
          continue;
        }
        bool expectedPeer = static_cast<int>(h->hello.fromRank) == leftRank && static_cast<int>(h->hello.toRank) == rank_ &&
                            static_cast<int>(h->hello.size) == size_ && h->hello.channel == 0 && !links.left.valid();
        if (!expectedPeer) {
          log_("rank " + std::to_string(rank_) + " refused an authenticated connection from " + h->remote + " claiming rank " +
               std::to_string(h->hello.fromRank) + " of " + std::to_string(h->hello.size));
          wire::put32(ack, static_cast<uint32_t>(wire::AckStatus::Unexpected));
          ::send(h->sock.fd(), ack, sizeof ack, MSG_NOSIGNAL | MSG_DONTWAIT);
          h.reset();
          continue;
        }
        wire::put32(ack, static_cast<uint32_t>(wire::AckStatus::Ok));
        h->queue(ack, sizeof ack);
        h->expect(0);
        h->stage = 3;
      }
    }
    incoming.erase(std::remove(incoming.begin(), incoming.end(), nullptr), incoming.end());
  }
  return links;
}

}  // namespace ringtrain
