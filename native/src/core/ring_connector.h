// The rank's connection manager: forms every link the rank uses, all through one authenticated
// handshake and the one listener in the port range: the ring (connects to the right neighbour,
// accepts the left one), the direct links of the small-message algorithm, and the mesh (one link to
// every other rank: point-to-point messages, sub-communicators). Each side proves it
// knows the job token (HMAC challenge-response). Strangers, garbage and slow handshakes on the
// listener are dropped and logged without disturbing the job.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "socket.h"

namespace ringtrain {

struct PeerAddress {
  std::string host;
  int port = 0;
  std::string hostname;  // for messages
};

struct RingLinks {
  Socket right;  // we connected: data goes out here, control messages come back
  Socket left;   // we accepted: data comes in here, control messages go back
  // Direct links of the small-message algorithm, indexed by peer rank (invalid where none).
  std::vector<Socket> partners;
  // One link to every other rank, for point-to-point messages and sub-communicators (the
  // P2pEngine owns them); indexed by peer rank, invalid for this rank.
  std::vector<Socket> mesh;
};

// Peers of `rank` in recursive doubling over the largest power of two p <= size; ranks >= p
// fold into rank - p first. These pairs get direct links besides the ring.
std::vector<int> doublingPartners(int rank, int size);

using Logger = std::function<void(const std::string&)>;

// "rank 3 (node7, 10.0.0.7:41000)": how every message names a peer.
std::string describePeer(int rank, const PeerAddress& p);

class RingConnector {
 public:
  RingConnector(int rank, int size, std::string token, std::vector<PeerAddress> peers, Logger log);

  // Blocks until both links are up, `deadline` (monotonic ms) passes, or `cancel` is set.
  RingLinks establish(Socket& listener, int64_t deadline, const std::atomic<bool>& cancel);

 private:
  int rank_;
  int size_;
  std::string token_;
  std::vector<PeerAddress> peers_;
  Logger log_;
};

// Fills `out` with unpredictable bytes (getrandom).
void randomBytes(uint8_t* out, size_t len);

}  // namespace ringtrain
