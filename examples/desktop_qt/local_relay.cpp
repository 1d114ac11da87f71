#include "local_relay.hpp"

#include <cstdio>

#include <QDir>
#include <QFile>
#include <string>

#include "common/local_handler.hpp"
#include "relaycore/hex.hpp"

using namespace relaycore;

namespace {

// The app's signing key, kept as hex in `path`, readable by its owner only. The first run makes
// one with Keypair::generate() and creates the file with mode 0600 before writing to it.
Result<Keypair> load_or_create_key(const QString& path) {
  QFile file(path);
  const std::string name = path.toStdString();
  if (file.exists()) {
    if (!file.open(QIODevice::ReadOnly)) return Status::error("cannot read " + name);
    Result<Keypair> keys = Keypair::from_secret_hex(file.readAll().trimmed().toStdString());
    if (!keys) return Status::invalid(name + ": " + std::string(keys.error().detail()));
    return keys;
  }
  Keypair keys = Keypair::generate();
  const std::string hex = to_hex(keys.secret()) + "\n";
  if (!file.open(QIODevice::WriteOnly | QIODevice::NewOnly,
                 QFileDevice::ReadOwner | QFileDevice::WriteOwner)) {
    return Status::error("cannot create " + name + ": " + file.errorString().toStdString());
  }
  // A key file cut short would stop the next start: on failure it goes.
  if (file.write(hex.data(), static_cast<qint64>(hex.size())) != static_cast<qint64>(hex.size()) ||
      !file.flush()) {
    const std::string why = file.errorString().toStdString();
    file.remove();
    return Status::error("cannot write " + name + ": " + why);
  }
  return keys;
}

}  // namespace

Result<std::unique_ptr<LocalRelay>> LocalRelay::open(const QString& data_dir, std::uint16_t port) {
  const QDir dir(data_dir);
  if (!dir.mkpath(".")) return Status::error("cannot create " + data_dir.toStdString());
  Result<Keypair> keys = load_or_create_key(dir.filePath("secret.key"));
  if (!keys) return std::move(keys).error();

  Options options;
  options.sqlite.path = dir.filePath("relay.db").toStdString();
  options.info.name = "relaycore desktop";
  options.info.description = "A desktop app's own relay";
  Result<std::unique_ptr<Relay>> relay = Relay::open(std::move(options));
  if (!relay) return std::move(relay).error();

  websocket::ServerOptions server_options;
  server_options.host = "127.0.0.1";  // this machine only
  server_options.port = port;
  Result<std::unique_ptr<websocket::Server>> server = websocket::Server::start(
      server_options, std::make_shared<relaycore_examples::LocalHandler>(**relay));
  if (!server) return std::move(server).error();
  return std::unique_ptr<LocalRelay>(
      new LocalRelay(std::move(relay).value(), std::move(server).value(), *keys));
}

void LocalRelay::shutdown() {
  if (Status s = relay_->shutdown(); !s) {
    std::fprintf(stderr, "relaycore-desktop: shutdown: %s\n", s.message().c_str());
  }
  server_->stop();
}
