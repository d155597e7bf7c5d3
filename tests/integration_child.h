// SPDX-License-Identifier: LicenseRef-Amil-Proprietary
// Running a real binary from a Google Test: temporary directories, a child
// process with its output in files, DPDK telemetry over its Unix socket,
// and a watchdog so that no test can hang the suite.
//
// Everything here is bounded in time.  The watchdog is the last line: a
// thread that wakes every second and, when the running test is past its
// budget, SIGKILLs every child still registered, removes the registered
// paths and exits the test binary with a message.  The tests themselves
// use shorter bounds (30 s to process, 20 s to exit) and fail cleanly.
#ifndef AMIL_TESTS_INTEGRATION_CHILD_H
#define AMIL_TESTS_INTEGRATION_CHILD_H

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace itest {

using Clock = std::chrono::steady_clock;

inline int64_t now_ms()
{
	return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now().time_since_epoch())
		.count();
}

inline void sleep_ms(int ms)
{
	std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

inline std::string read_file(const std::string &path)
{
	std::ifstream f(path, std::ios::binary);
	std::stringstream ss;

	ss << f.rdbuf();
	return ss.str();
}

inline bool write_file(const std::string &path, const std::string &text)
{
	std::ofstream f(path, std::ios::binary | std::ios::trunc);

	f << text;
	return bool(f);
}

inline bool file_exists(const std::string &path)
{
	return access(path.c_str(), F_OK) == 0;
}

// Where EAL puts a file prefix's runtime files (eal_get_runtime_dir()).
inline std::string dpdk_run_dir(const std::string &prefix)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	std::string base = getuid() == 0 ? "/var/run" : (xdg != nullptr ? xdg : "/tmp");

	return base + "/dpdk/" + prefix;
}

// ---- watchdog --------------------------------------------------------------

class Watchdog {
public:
	static Watchdog &get()
	{
		static Watchdog w;
		return w;
	}

	// Allow the current test @seconds from now.
	void arm(int seconds, const std::string &test)
	{
		std::lock_guard<std::mutex> g(mu_);
		test_ = test;
		deadline_ms_ = now_ms() + seconds * 1000;
		if (!started_) {
			started_ = true;
			std::thread(&Watchdog::loop, this).detach();
		}
	}
	void disarm()
	{
		std::lock_guard<std::mutex> g(mu_);
		deadline_ms_ = 0;
	}
	void add_pid(pid_t p)
	{
		std::lock_guard<std::mutex> g(mu_);
		pids_.push_back(p);
	}
	void remove_pid(pid_t p)
	{
		std::lock_guard<std::mutex> g(mu_);
		for (auto &x : pids_)
			if (x == p)
				x = -1;
	}
	void add_path(const std::string &p)
	{
		std::lock_guard<std::mutex> g(mu_);
		paths_.push_back(p);
	}

private:
	void loop()
	{
		for (;;) {
			sleep_ms(1000);
			std::lock_guard<std::mutex> g(mu_);
			if (deadline_ms_ == 0 || now_ms() < deadline_ms_)
				continue;
			fprintf(stderr, "\nWATCHDOG: test %s exceeded its time budget; killing children\n",
				test_.c_str());
			for (pid_t p : pids_)
				if (p > 0) {
					kill(p, SIGKILL);
					waitpid(p, nullptr, 0);
				}
			for (const auto &p : paths_) {
				std::error_code ec;
				std::filesystem::remove_all(p, ec);
			}
			fflush(stderr);
			_exit(3);
		}
	}

	std::mutex mu_;
	bool started_ = false;
	int64_t deadline_ms_ = 0;
	std::string test_;
	std::vector<pid_t> pids_;
	std::vector<std::string> paths_;
};

// ---- temporary directory ---------------------------------------------------

class TempDir {
public:
	TempDir() = default;
	TempDir(const TempDir &) = delete;
	TempDir &operator=(const TempDir &) = delete;
	~TempDir() { remove(); }

	bool create(const std::string &tag)
	{
		std::string tmpl = "/tmp/amil-" + tag + "-XXXXXX";
		std::vector<char> buf(tmpl.begin(), tmpl.end());

		buf.push_back('\0');
		if (mkdtemp(buf.data()) == nullptr)
			return false;
		path_ = buf.data();
		Watchdog::get().add_path(path_);
		return true;
	}
	void remove()
	{
		if (path_.empty())
			return;
		std::error_code ec;
		std::filesystem::remove_all(path_, ec);
		path_.clear();
	}
	const std::string &path() const { return path_; }
	std::string operator/(const std::string &name) const { return path_ + "/" + name; }

private:
	std::string path_;
};

// ---- child process ---------------------------------------------------------

class Child {
public:
	Child() = default;
	Child(const Child &) = delete;
	Child &operator=(const Child &) = delete;
	~Child() { kill_hard(); }

	// fork/exec @argv[0] with stdin from /dev/null and stdout/stderr into
	// the two files.  Returns "" or the problem.
	std::string start(const std::vector<std::string> &argv, const std::string &out_path,
			  const std::string &err_path)
	{
		std::vector<char *> av;
		int in_fd, out_fd, err_fd;

		kill_hard();
		for (const auto &a : argv)
			av.push_back(const_cast<char *>(a.c_str()));
		av.push_back(nullptr);
		in_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		out_fd = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		err_fd = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (in_fd < 0 || out_fd < 0 || err_fd < 0) {
			close_all(in_fd, out_fd, err_fd);
			return "cannot open /dev/null or the output files";
		}
		fflush(nullptr);
		pid_t parent = getpid();
		pid_ = fork();
		if (pid_ == 0) {
			// Only async-signal-safe calls between fork and exec.  If
			// the test binary dies (crash, watchdog), the child dies too.
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(127);
			dup2(in_fd, 0);
			dup2(out_fd, 1);
			dup2(err_fd, 2);
			execv(av[0], av.data());
			_exit(127);
		}
		close_all(in_fd, out_fd, err_fd);
		if (pid_ < 0) {
			pid_ = -1;
			return std::string("fork: ") + strerror(errno);
		}
		Watchdog::get().add_pid(pid_);
		exited_ = false;
		return "";
	}

	pid_t pid() const { return pid_; }
	bool exited() const { return exited_; }
	int status() const { return status_; }

	// Non-blocking: true when the child has exited (status recorded).
	bool poll_exit()
	{
		if (pid_ < 0 || exited_)
			return exited_;
		pid_t r = waitpid(pid_, &status_, WNOHANG);

		if (r == pid_) {
			exited_ = true;
			Watchdog::get().remove_pid(pid_);
		}
		return exited_;
	}

	// Wait up to @timeout_ms for the exit; true when it exited.
	bool wait_exit(int timeout_ms)
	{
		int64_t end = now_ms() + timeout_ms;

		while (!poll_exit()) {
			if (now_ms() >= end)
				return false;
			sleep_ms(10);
		}
		return true;
	}

	void signal(int sig)
	{
		if (pid_ > 0 && !exited_)
			kill(pid_, sig);
	}

	// SIGKILL a child that is still running and reap it.
	void kill_hard()
	{
		if (pid_ > 0 && !exited_) {
			kill(pid_, SIGKILL);
			waitpid(pid_, &status_, 0);
			exited_ = true;
			Watchdog::get().remove_pid(pid_);
		}
	}

	// "exit 0", "killed by signal 9", ...
	std::string describe() const
	{
		if (!exited_)
			return "still running";
		if (WIFEXITED(status_))
			return "exit " + std::to_string(WEXITSTATUS(status_));
		if (WIFSIGNALED(status_))
			return "killed by signal " + std::to_string(WTERMSIG(status_));
		return "status " + std::to_string(status_);
	}

private:
	static void close_all(int a, int b, int c)
	{
		if (a >= 0)
			close(a);
		if (b >= 0)
			close(b);
		if (c >= 0)
			close(c);
	}

	pid_t pid_ = -1;
	bool exited_ = true;
	int status_ = 0;
};

// ---- DPDK telemetry (v2 socket, SOCK_SEQPACKET, one JSON per message) ------

class Telemetry {
public:
	Telemetry() = default;
	Telemetry(const Telemetry &) = delete;
	Telemetry &operator=(const Telemetry &) = delete;
	~Telemetry() { close_fd(); }

	// Connect and read the greeting.  Returns "" or the problem (the
	// socket may simply not exist yet).
	std::string connect_to(const std::string &path)
	{
		struct sockaddr_un sun;
		struct timeval tv = {2, 0};

		close_fd();
		if (path.size() >= sizeof(sun.sun_path))
			return "socket path too long";
		fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd_ < 0)
			return std::string("socket: ") + strerror(errno);
		setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
		setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
		memset(&sun, 0, sizeof(sun));
		sun.sun_family = AF_UNIX;
		memcpy(sun.sun_path, path.c_str(), path.size());
		if (connect(fd_, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
			std::string e = std::string("connect: ") + strerror(errno);

			close_fd();
			return e;
		}
		greeting_ = recv_msg();
		if (greeting_.find("max_output_len") == std::string::npos) {
			close_fd();
			return "no telemetry greeting";
		}
		return "";
	}

	bool connected() const { return fd_ >= 0; }
	const std::string &greeting() const { return greeting_; }

	// Send @cmd and return the JSON reply ("" on error; then disconnected).
	std::string query(const std::string &cmd)
	{
		std::string r;

		if (fd_ < 0)
			return "";
		if (send(fd_, cmd.data(), cmd.size(), MSG_NOSIGNAL) != (ssize_t)cmd.size()) {
			close_fd();
			return "";
		}
		r = recv_msg();
		if (r.empty())
			close_fd();
		return r;
	}

	void close_fd()
	{
		if (fd_ >= 0)
			close(fd_);
		fd_ = -1;
	}

private:
	std::string recv_msg()
	{
		std::vector<char> buf(1 << 16);
		ssize_t n = recv(fd_, buf.data(), buf.size(), 0);

		return n > 0 ? std::string(buf.data(), (size_t)n) : std::string();
	}

	int fd_ = -1;
	std::string greeting_;
};

}  // namespace itest

#endif
