// What the command-line tests share: the app run as a user runs it, in a data
// folder of the test's own, and that folder given the tiny base the CTest
// fixture pretrained (so no test pretrains one of its own).
#pragma once

#include <QDir>
#include <QFile>
#include <QFileInfo>
#include <QMap>
#include <QProcess>
#include <QtTest>

namespace cli_fixture {

struct Result {
  int code;
  QString out, err;
  bool killed = false;  // by SIGKILL (a kill point)
};

// `extra` adds to the environment; a value of "-" removes the variable.
inline Result run(const QStringList& args, const QString& data_dir, const QMap<QString, QString>& extra = {}) {
  QProcess p;
  QProcessEnvironment env = QProcessEnvironment::systemEnvironment();
  env.insert("LWB_DATA_DIR", data_dir);
  for (auto it = extra.begin(); it != extra.end(); ++it)
    if (it.value() == "-")
      env.remove(it.key());
    else
      env.insert(it.key(), it.value());
  p.setProcessEnvironment(env);
  p.start(LWB_APP_BINARY, args);
  if (!p.waitForFinished(300000)) return {-1, {}, "timeout"};
  return {p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()), QString::fromUtf8(p.readAllStandardError()),
          p.exitStatus() == QProcess::CrashExit};
}

// A failed QVERIFY here fails the calling test function too (QtTest records
// it); callers return right after, so nothing runs on a half-made folder.
inline void copy_tiny_base(const QString& data_dir) {
  const QString shared = qEnvironmentVariable("XDG_DATA_HOME") + "/lora-workbench/models/tiny-base.safetensors";
  QVERIFY2(QFileInfo::exists(shared), qPrintable(shared));
  QVERIFY(QDir().mkpath(data_dir + "/models"));
  QVERIFY(QFile::copy(shared, data_dir + "/models/tiny-base.safetensors"));
}

}  // namespace cli_fixture
