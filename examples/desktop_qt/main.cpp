// relaycore-desktop: a Qt 6 Widgets app that keeps its own Nostr relay. relaycore runs inside
// the process with SQLite in the app's data directory; the window shows the notes through an
// in-process subscription (no socket) and posts notes signed with the app's key; and the same
// relay is served on ws://127.0.0.1:PORT so that other apps on this machine can share it.
//
//   relaycore-desktop [--data-dir DIR] [--port N] [--post TEXT] [--screenshot PATH]
//
// Lines on stdout, for scripts and tests:
//   relaycore-desktop: pubkey <hex>                  the app's key
//   relaycore-desktop: listening ws://127.0.0.1:PORT
//   relaycore-desktop: shown <event id>              a note was added to the feed
//   relaycore-desktop: screenshot PATH               saved at exit, with --screenshot
//   relaycore-desktop: stopped                       the relay drained; exits 0
// SIGINT and SIGTERM close the app as closing its window does.
#include <signal.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <QApplication>
#include <QCommandLineParser>
#include <QSocketNotifier>
#include <QStandardPaths>
#include <cstdio>

#include "local_relay.hpp"
#include "main_window.hpp"
#include "relaycore/hex.hpp"

namespace {

// Blocks SIGINT and SIGTERM in this thread and so in every thread started later (Qt's, the
// relay's), and returns a descriptor that reads them, for the event loop to watch.
int quit_signals_fd() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signalfd(-1, &signals, SFD_CLOEXEC | SFD_NONBLOCK);
}

int fail(const QString& what) {
  std::fprintf(stderr, "relaycore-desktop: %s\n", what.toUtf8().constData());
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  const int signal_fd = quit_signals_fd();
  signal(SIGPIPE, SIG_IGN);
  QApplication app(argc, argv);
  QApplication::setApplicationName("relaycore-desktop");

  QCommandLineParser parser;
  parser.setApplicationDescription("A Nostr app with its own relay, shared on 127.0.0.1.");
  parser.addHelpOption();
  const QCommandLineOption data_dir_option(
      "data-dir", "Keep the relay's database and the app's key in DIR.", "DIR",
      QStandardPaths::writableLocation(QStandardPaths::AppDataLocation));
  const QCommandLineOption port_option("port", "Serve the relay on port N (0 picks one).", "N",
                                       "0");
  const QCommandLineOption post_option("post", "Post a note with TEXT at start.", "TEXT");
  const QCommandLineOption screenshot_option("screenshot", "Save the window as PATH at exit.",
                                             "PATH");
  parser.addOptions({data_dir_option, port_option, post_option, screenshot_option});
  parser.process(app);
  bool port_ok = false;
  const uint port = parser.value(port_option).toUInt(&port_ok);
  if (!port_ok || port > 65535) return fail("--port wants 0 to 65535");
  if (signal_fd < 0) return fail("cannot watch for signals");

  relaycore::Result<std::unique_ptr<LocalRelay>> local =
      LocalRelay::open(parser.value(data_dir_option), static_cast<std::uint16_t>(port));
  if (!local) return fail(QString::fromStdString(local.error().message()));

  MainWindow window(**local);
  if (relaycore::Status feed = window.start_feed(); !feed) {
    return fail(QString::fromStdString(feed.message()));
  }
  window.show();
  announce("pubkey " + QString::fromStdString(relaycore::to_hex((*local)->keys().pubkey())));
  announce(QString("listening ws://127.0.0.1:%1").arg((*local)->port()));
  if (parser.isSet(post_option)) window.post(parser.value(post_option));

  QSocketNotifier quit_notifier(signal_fd, QSocketNotifier::Read);
  QObject::connect(&quit_notifier, &QSocketNotifier::activated, &app, &QApplication::quit);
  const int status = QApplication::exec();

  // The window as it is now, the last note on top.
  const QString screenshot = parser.value(screenshot_option);
  const bool saved = screenshot.isEmpty() || window.grab().save(screenshot, "PNG");
  // Before the window goes: every note in flight is answered and no callback is left to reach it.
  (*local)->shutdown();
  close(signal_fd);
  if (!saved) return fail("cannot save " + screenshot);
  if (!screenshot.isEmpty()) announce("screenshot " + screenshot);
  announce("stopped");
  return status;
}
