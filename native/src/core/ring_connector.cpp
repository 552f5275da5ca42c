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

RingConnector::RingConnector(int rank, int size, std::string token, std::vector<PeerAddress> peers, Logger log)
    : rank_(rank), size_(size), token_(std::move(token)), peers_(std::move(peers)), log_(std::move(log)) {}

std::vector<int> doublingPartners(int rank, int size) {
  int p = 1;
  while (p * 2 <= size) p *= 2;
  std::vector<int> out;
  if (rank >= p) {
    out.push_back(rank - p);
    return out;
  }
  for (int k = 1; k < p; k *= 2) out.push_back(rank ^ k);
  if (rank + p < size) out.push_back(rank + p);
  return out;
}

RingLinks RingConnector::establish(Socket& listener, int64_t deadline, const std::atomic<bool>& cancel) {
  const int rightRank = (rank_ + 1) % size_;
  const int leftRank = (rank_ + size_ - 1) % size_;
  RingLinks links;
  links.partners.resize(static_cast<size_t>(size_));
  links.mesh.resize(static_cast<size_t>(size_));

  // Every link this rank needs: the ring (channel 0: dial right, accept left) and the partners of
  // the small-message algorithm (channel 1: the lower rank dials), and the mesh (channel 2: one link
  // to every other rank, the lower rank dials). Links are made here, at set-up, because the listener
  // closes afterwards (strangers then meet a closed port); the mesh costs size - 1 fds per rank.
  struct Want {
    int peer;
    uint16_t channel;
    bool dial;
    Socket* slot;
    std::unique_ptr<Handshake> hs;
    int64_t nextTry = 0;
    std::string lastError = "not attempted";
  };
  std::vector<Want> wants;
  wants.push_back({rightRank, 0, true, &links.right, nullptr});
  wants.push_back({leftRank, 0, false, &links.left, nullptr});
  for (int q : doublingPartners(rank_, size_)) wants.push_back({q, 1, rank_ < q, &links.partners[static_cast<size_t>(q)], nullptr});
  for (int q = 0; q < size_; ++q)
    if (q != rank_) wants.push_back({q, 2, rank_ < q, &links.mesh[static_cast<size_t>(q)], nullptr});
  std::vector<std::unique_ptr<Handshake>> incoming;

  auto startDial = [&](Want& w) {
    const PeerAddress& to = peers_.at(static_cast<size_t>(w.peer));
    w.hs = std::make_unique<Handshake>();
    w.hs->outgoing = true;
    w.hs->sock = startConnect(to.host, to.port);
    w.hs->deadline = deadline;
    w.hs->hello.fromRank = static_cast<uint32_t>(rank_);
    w.hs->hello.toRank = static_cast<uint32_t>(w.peer);
    w.hs->hello.size = static_cast<uint32_t>(size_);
    w.hs->hello.channel = w.channel;
    randomBytes(w.hs->hello.nonce, wire::kNonceBytes);
    w.hs->stage = 0;  // waiting for connect to complete
  };
  auto allUp = [&]() {
    for (const Want& w : wants)
      if (!w.slot->valid()) return false;
    return true;
  };

  while (!allUp()) {
    if (cancel.load()) throw CommError(ErrorCode::Cancelled, "communicator closed while connecting");
    const int64_t now = nowMs();
    if (now >= deadline) {
      for (const Want& w : wants) {
        if (w.slot->valid()) continue;
        const PeerAddress& p = peers_.at(static_cast<size_t>(w.peer));
        if (w.dial) throw CommError(ErrorCode::Timeout, "timed out connecting to " + describePeer(w.peer, p) + ": " + w.lastError);
        throw CommError(ErrorCode::Timeout, describePeer(w.peer, p) + " never connected to this rank (rank " + std::to_string(rank_) +
                                                ") before the timeout");
      }
    }
    int wait = msUntil(deadline, 100);
    for (Want& w : wants) {
      if (w.dial && !w.slot->valid() && !w.hs) {
        if (now >= w.nextTry) startDial(w);
        else wait = std::min(wait, msUntil(w.nextTry, 100));
      }
    }

    std::vector<pollfd> fds;
    fds.push_back({listener.fd(), POLLIN, 0});
    for (Want& w : wants) {
      if (!w.hs) continue;
      fds.push_back({w.hs->sock.fd(), static_cast<short>(w.hs->stage == 0 || w.hs->wantsWrite() ? POLLOUT : POLLIN), 0});
    }
    for (auto& h : incoming) fds.push_back({h->sock.fd(), static_cast<short>(h->wantsWrite() ? POLLOUT | POLLIN : POLLIN), 0});
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

    // Our outgoing handshakes.
    for (Want& w : wants) {
      if (!w.hs) continue;
      Handshake& d = *w.hs;
      const PeerAddress& to = peers_.at(static_cast<size_t>(w.peer));
      pollfd& p = fds[idx++];
      std::string why;
      bool ok = true;
      if (d.stage == 0) {
        if (p.revents & (POLLOUT | POLLERR | POLLHUP)) {
          int e = socketError(d.sock.fd());
          if (e != 0) {
            ok = false;
            why = std::strerror(e);
          } else {
            tuneSocket(d.sock.fd());
            uint8_t buf[wire::Hello::kSize];
            d.hello.encode(buf);
            d.queue(buf, sizeof buf);
            d.expect(wire::Challenge::kSize);
            d.stage = 1;
          }
        }
      } else {
        ok = pump(d, p.revents, &why);
      }
      if (ok && d.inputReady()) {
        if (d.stage == 1) {
          wire::Challenge c;
          if (!c.decode(d.in)) {
            throw CommError(ErrorCode::Auth, describePeer(w.peer, to) + " answered with something that is not ringtrain: is another program listening there?");
          }
          wire::Challenge expected = makeChallenge(token_, d.hello, c.nonce, 'A');
          if (!digestEqual(expected.mac, c.mac, wire::kMacBytes)) {
            throw CommError(ErrorCode::Auth, describePeer(w.peer, to) +
                                                 " could not prove it knows the job token (RINGTRAIN_TOKEN differs, or another job listens there)");
          }
          wire::Challenge proof = makeChallenge(token_, d.hello, c.nonce, 'C');
          d.queue(proof.mac, wire::kProofSize);
          d.expect(wire::kAckSize);
          d.stage = 2;
        } else if (d.stage == 2) {
          auto status = static_cast<wire::AckStatus>(wire::get32(d.in));
          if (status == wire::AckStatus::AuthFailed) {
            throw CommError(ErrorCode::Auth, describePeer(w.peer, to) + " rejected this rank's proof of the job token: RINGTRAIN_TOKEN differs between ranks");
          }
          if (status != wire::AckStatus::Ok) {
            throw CommError(ErrorCode::Peer, describePeer(w.peer, to) + " refused the connection (it expected a different rank or job size)");
          }
          *w.slot = std::move(d.sock);
          w.hs.reset();
        }
      }
      if (!ok) {
        w.lastError = why;
        w.hs.reset();
        w.nextTry = nowMs() + 100;  // peer not listening yet, or refused: retry until the deadline
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
        // A stranger that sent nothing (a port probe) is dropped quietly; one that sent bytes is logged.
        if (h->stage > 0 || h->have > 0) log_("rank " + std::to_string(rank_) + " dropped a connection from " + h->remote + ": " + why);
        h.reset();
        continue;
      }
      if (h->stage == 3 && !h->wantsWrite()) {
        // Ack flushed: the link is ours.
        for (Want& w : wants) {
          if (!w.dial && w.peer == static_cast<int>(h->hello.fromRank) && w.channel == h->hello.channel && !w.slot->valid()) {
            *w.slot = std::move(h->sock);
            tuneSocket(w.slot->fd());
            break;
          }
        }
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
        bool expectedPeer = false;
        for (const Want& w : wants) {
          if (!w.dial && w.peer == static_cast<int>(h->hello.fromRank) && w.channel == h->hello.channel && !w.slot->valid()) expectedPeer = true;
        }
        expectedPeer = expectedPeer && static_cast<int>(h->hello.toRank) == rank_ && static_cast<int>(h->hello.size) == size_;
        if (!expectedPeer) {
          log_("rank " + std::to_string(rank_) + " refused an authenticated connection from " + h->remote + " claiming rank " +
               std::to_string(h->hello.fromRank) + " of " + std::to_string(h->hello.size) + " on channel " + std::to_string(h->hello.channel));
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
