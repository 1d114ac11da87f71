// The app's window: where its relay listens, the feed of notes (newest at top), and a box to post
// a note signed with the app's key.
#pragma once

#include <QMainWindow>
#include <memory>

#include "local_relay.hpp"
#include "relaycore/event.hpp"
#include "relaycore/subscribe.hpp"

class QLineEdit;
class QListWidget;

// Prints "relaycore-desktop: <line>" on stdout at once: what scripts and tests watch for.
void announce(const QString& line);

class MainWindow final : public QMainWindow {
  Q_OBJECT

 public:
  explicit MainWindow(LocalRelay& local);

  // Subscribes the feed to the relay's notes: the stored ones, then each one as it is stored,
  // whoever wrote it (this window, or another app over WebSocket).
  relaycore::Status start_feed();

  // Signs `text` as a note with the app's key and submits it without waiting; the note reaches
  // the feed through the subscription, like any other.
  void post(const QString& text);

 private:
  // Runs on the GUI thread, for each event of the subscription in order.
  void add_note(const relaycore::EventPtr& note);

  LocalRelay& local_;
  QListWidget* feed_;
  QLineEdit* compose_;
  // Set at the end of the stored notes: they come newest first and go below each other; later
  // ones go on top.
  bool history_done_ = false;
  std::unique_ptr<relaycore::SubscriptionHandle> subscription_;
};
