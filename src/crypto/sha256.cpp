#include "crypto/sha256.hpp"

#include <openssl/evp.h>
#include <openssl/sha.h>

#include <cstdlib>

namespace relaycore::crypto {
namespace {

// Fetched once: EVP_sha256() per hash would look the algorithm up each time.
const EVP_MD* sha256_md() {
  static EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  return md;
}

}  // namespace

struct Sha256::Impl {
  EVP_MD_CTX* ctx = nullptr;
};

Sha256::Sha256() : impl_(new Impl) {
  impl_->ctx = EVP_MD_CTX_new();
  if (impl_->ctx == nullptr) std::abort();  // out of memory
  reset();
}

Sha256::~Sha256() {
  EVP_MD_CTX_free(impl_->ctx);
  delete impl_;
}

void Sha256::reset() {
  if (EVP_DigestInit_ex(impl_->ctx, sha256_md(), nullptr) != 1) std::abort();
}

void Sha256::update(const void* data, std::size_t size) {
  EVP_DigestUpdate(impl_->ctx, data, size);
}

Digest Sha256::finish() {
  Digest out{};
  unsigned int len = 0;
  EVP_DigestFinal_ex(impl_->ctx, out.data(), &len);
  return out;
}

Digest sha256(const void* data, std::size_t size) {
  Digest out{};
  SHA256(static_cast<const unsigned char*>(data), size, out.data());
  return out;
}

}  // namespace relaycore::crypto
