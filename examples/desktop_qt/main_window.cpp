#include "main_window.hpp"

#include <QDateTime>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QStatusBar>
#include <QVBoxLayout>
#include <cstdio>
#include <string>

#include "relaycore/hex.hpp"
#include "relaycore/keys.hpp"

using namespace relaycore;

namespace {

// Notes the feed loads from storage, and keeps at most.
constexpr std::uint32_t kFeedSize = 200;

QString from_std(std::string_view s) {
  return QString::fromUtf8(s.data(), static_cast<qsizetype>(s.size()));
}

}  // namespace

void announce(const QString& line) {
  std::printf("relaycore-desktop: %s\n", line.toUtf8().constData());
  std::fflush(stdout);
}

MainWindow::MainWindow(LocalRelay& local)
    : local_(local), feed_(new QListWidget), compose_(new QLineEdit) {
  const QString url = QString("ws://127.0.0.1:%1").arg(local_.port());
  setWindowTitle(tr("relaycore desktop — %1").arg(url));
  auto* header = new QLabel(tr("Local relay on <b>%1</b><br>Your key: <tt>%2</tt>")
                                .arg(url, from_std(to_hex(local_.keys().pubkey()))));
  header->setTextInteractionFlags(Qt::TextSelectableByMouse);
  feed_->setWordWrap(true);
  feed_->setAlternatingRowColors(true);
  compose_->setPlaceholderText(tr("Write a note"));
  auto* send = new QPushButton(tr("Post"));

  auto* row = new QHBoxLayout;
  row->addWidget(compose_);
  row->addWidget(send);
  auto* column = new QVBoxLayout;
  column->addWidget(header);
  column->addWidget(feed_);
  column->addLayout(row);
  auto* central = new QWidget;
  central->setLayout(column);
  setCentralWidget(central);
  resize(640, 480);

  auto submit = [this] {
    const QString text = compose_->text().trimmed();
    if (text.isEmpty()) return;
    post(text);
    compose_->clear();
  };
  connect(send, &QPushButton::clicked, this, submit);
  connect(compose_, &QLineEdit::returnPressed, this, submit);
}

Status MainWindow::start_feed() {
  Filter notes;
  notes.kinds = std::vector<std::uint16_t>{1};
  notes.limit = kFeedSize;
  // The callbacks run on relaycore's callback thread: each one queues its work for the GUI
  // thread, in order. The relay is shut down before this window goes, so none outlives it.
  SubscribeCallbacks callbacks;
  callbacks.on_event = [this](const EventPtr& note) {
    QMetaObject::invokeMethod(
        this, [this, note] { add_note(note); }, Qt::QueuedConnection);
  };
  callbacks.on_eose = [this] {
    QMetaObject::invokeMethod(
        this, [this] { history_done_ = true; }, Qt::QueuedConnection);
  };
  callbacks.on_closed = [this](std::string_view reason) {
    const QString text = tr("The feed stopped: %1").arg(from_std(reason));
    QMetaObject::invokeMethod(
        this, [this, text] { statusBar()->showMessage(text); }, Qt::QueuedConnection);
  };
  Result<std::unique_ptr<SubscriptionHandle>> subscription =
      local_.relay().subscribe({notes}, std::move(callbacks));
  if (!subscription) return subscription.error();
  subscription_ = std::move(subscription).value();
  return Status::ok();
}

void MainWindow::post(const QString& text) {
  EventDraft draft;
  draft.created_at = QDateTime::currentSecsSinceEpoch();
  draft.content = text.toStdString();
  Result<EventPtr> note = sign_event(local_.keys(), std::move(draft));
  if (!note) {
    statusBar()->showMessage(from_std(note.error().message()));
    return;
  }
  local_.relay().submit_async(*note, [this](const OkResult& ok) {
    const QString answer =
        ok.accepted ? tr("Posted") : tr("Not posted: %1").arg(from_std(ok.message));
    QMetaObject::invokeMethod(
        this, [this, answer] { statusBar()->showMessage(answer, 5000); }, Qt::QueuedConnection);
  });
}

void MainWindow::add_note(const EventPtr& note) {
  const QString author = note->pubkey() == local_.keys().pubkey()
                             ? tr("you")
                             : from_std(note->pubkey_hex().substr(0, 12)) + "…";
  const QString when =
      QDateTime::fromSecsSinceEpoch(note->created_at()).toString("yyyy-MM-dd hh:mm");
  auto* item =
      new QListWidgetItem(QString("%1 · %2\n%3").arg(author, when, from_std(note->content())));
  item->setToolTip(from_std(note->id_hex()));
  if (history_done_) {
    feed_->insertItem(0, item);
  } else {
    feed_->addItem(item);
  }
  while (feed_->count() > static_cast<int>(kFeedSize)) delete feed_->takeItem(feed_->count() - 1);
  announce("shown " + from_std(note->id_hex()));
}
