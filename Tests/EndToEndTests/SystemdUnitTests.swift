import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// deploy/systemd/erp-gateway.service: accepted by systemd's own parser, stopping after the drain
/// of the example settings, and a sandbox the real binary runs in. systemd is not PID 1 where the
/// tests run, so the unit's system call filter, address families, MemoryDenyWriteExecute and
/// NoNewPrivileges are built here as systemd builds them (seccomp, prctl) around the binary, under
/// strace, and every system call, socket, memory protection and file write it makes is held
/// against what the unit allows.
final class SystemdUnitTests: XCTestCase {
    static let unitPath = "deploy/systemd/erp-gateway.service"
    static let systemdAnalyze = URL(fileURLWithPath: "/usr/bin/systemd-analyze")

    /// The `[Service]` directives in order, each key with every value it was given.
    static func serviceDirectives() throws -> [String: [String]] {
        var section = ""
        var directives: [String: [String]] = [:]
        for raw in try DeployFilesTests.text(self.unitPath).split(separator: "\n", omittingEmptySubsequences: false) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") { section = line; continue }
            guard section == "[Service]", let equals = line.firstIndex(of: "=") else { continue }
            directives[String(line[..<equals]), default: []].append(String(line[line.index(after: equals)...]))
        }
        return directives
    }

    /// The unit with its binary's path pointing at the built one, in a directory of its own.
    func unitForTheBuiltBinary() throws -> URL {
        let directory = try DeployFileReading.temporaryDirectory("systemd")
        self.addTeardownBlock { try? FileManager.default.removeItem(at: directory) }
        let unit = directory.appendingPathComponent("erp-gateway.service")
        try DeployFilesTests.text(Self.unitPath)
            .replacingOccurrences(of: "/usr/local/bin/erp-gateway", with: GatewayProcess.binary.path)
            .write(to: unit, atomically: true, encoding: .utf8)
        return unit
    }

    func testSystemdAcceptsTheUnitWithoutAWarning() throws {
        let unit = try self.unitForTheBuiltBinary()
        // `verify` exits 0 on a directive it cannot parse ("…, ignoring"), so its output must be empty too.
        let (status, output) = try runCommand(Self.systemdAnalyze, ["verify", unit.path])
        XCTAssertEqual(status, 0, output)
        XCTAssertEqual(output.trimmingCharacters(in: .whitespacesAndNewlines), "", "systemd-analyze verify")

        let (_, security) = try runCommand(Self.systemdAnalyze, ["security", "--offline=yes", unit.path])
        let exposure = security.split(separator: "\n").first { $0.contains("Overall exposure level") }
            .flatMap { line in line.split(separator: ":").last?.split(separator: " ").first.flatMap { Double($0) } }
        XCTAssertNotNil(exposure, security)
        XCTAssertLessThanOrEqual(exposure ?? 10, 2.0, "systemd-analyze security rates the unit's exposure")
    }

    func testTheUnitReloadsWithSIGHUPAndOutlastsTheDrain() throws {
        let unit = try Self.serviceDirectives()
        XCTAssertEqual(unit["ExecReload"], ["/bin/kill -HUP $MAINPID"])
        XCTAssertEqual(unit["KillSignal"], ["SIGTERM"])
        XCTAssertEqual(unit["Restart"], ["on-failure"])
        XCTAssertEqual(unit["ExecStart"]?.count, 1)
        XCTAssertTrue(unit["ExecStart"]?.first?.hasPrefix("/usr/local/bin/erp-gateway serve --config /etc/erp-gateway/gateway.yaml") ?? false)
        // Invalid settings exit 2 (operations.md, "Running"): restarting would not mend them.
        XCTAssertEqual(unit["RestartPreventExitStatus"], ["2"])

        // The stop timeout outlasts the drain of the example settings.
        let example = try DeployFileReading.listeners(ofSettings: DeployFilesTests.text("deploy/examples/gateway.yaml"))
        let stop = try XCTUnwrap(unit["TimeoutStopSec"]?.last.flatMap(DeployFileReading.seconds))
        XCTAssertGreaterThan(stop, example.shutdownGrace)
        XCTAssertEqual(unit["LimitNOFILE"]?.last.flatMap { Int($0) }.map { $0 >= 65536 }, true)

        // A user of its own, which the sysusers file creates; no capability unless opted in.
        let user = try XCTUnwrap(unit["User"]?.last)
        XCTAssertNotEqual(user, "root")
        let root = try DeployFileReading.temporaryDirectory("sysusers")
        defer { try? FileManager.default.removeItem(at: root) }
        let (status, created) = try runCommand(URL(fileURLWithPath: "/usr/bin/systemd-sysusers"), [
            "--dry-run", "--root=\(root.path)", DeployFileReading.url("deploy/systemd/erp-gateway.sysusers").path,
        ])
        XCTAssertEqual(status, 0, created)
        XCTAssertTrue(created.contains("Creating user '\(user)'"), created)
        XCTAssertEqual(unit["CapabilityBoundingSet"], [""])
        XCTAssertEqual(unit["AmbientCapabilities"], [""])
        XCTAssertTrue(try DeployFilesTests.text(Self.unitPath).contains("#AmbientCapabilities=CAP_NET_BIND_SERVICE"))
        for (key, value) in [
            ("NoNewPrivileges", "yes"), ("ProtectSystem", "strict"), ("ProtectHome", "yes"), ("PrivateTmp", "yes"),
            ("MemoryDenyWriteExecute", "yes"), ("RestrictAddressFamilies", "AF_INET AF_INET6 AF_UNIX"),
        ] {
            XCTAssertEqual(unit[key], [value], key)
        }
        XCTAssertEqual(unit["SystemCallFilter"]?.first, "@system-service")
    }

    /// The system calls the unit's `SystemCallFilter` lines allow, groups expanded as systemd
    /// expands them (`systemd-analyze syscall-filter`).
    static func allowedSystemCalls(_ filters: [String]) throws -> Set<String> {
        let (status, listing) = try runCommand(self.systemdAnalyze, ["syscall-filter"])
        XCTAssertEqual(status, 0, listing)
        var groups: [String: [String]] = [:]
        var current: String?
        for line in listing.split(separator: "\n") {
            if line.hasPrefix("@") { current = String(line); continue }
            let member = line.trimmingCharacters(in: .whitespaces)
            guard let current, line.hasPrefix(" "), !member.isEmpty, !member.hasPrefix("#") else { continue }
            groups[current, default: []].append(member)
        }
        func expand(_ name: String) -> Set<String> {
            guard name.hasPrefix("@") else { return [name] }
            return (groups[name] ?? []).reduce(into: Set<String>()) { $0.formUnion(expand($1)) }
        }
        var allowed = Set<String>()
        for filter in filters {
            let denied = filter.hasPrefix("~")
            let names = filter.dropFirst(denied ? 1 : 0).split(separator: " ").map(String.init)
            let calls = names.reduce(into: Set<String>()) { $0.formUnion(expand($1)) }
            if denied { allowed.subtract(calls) } else { allowed.formUnion(calls) }
        }
        return allowed
    }

    func testTheGatewayRunsWithinTheUnitsSandbox() throws {
        let unit = try Self.serviceDirectives()
        let allowed = try Self.allowedSystemCalls(unit["SystemCallFilter"] ?? [])
        XCTAssertTrue(allowed.contains("epoll_wait") && allowed.contains("accept4") && !allowed.contains("reboot"), "\(allowed.count) allowed")
        let families = (unit["RestrictAddressFamilies"]?.last ?? "").split(separator: " ").map(String.init)

        // The sandbox as systemd builds it from these directives, around the real binary:
        // NoNewPrivileges, MemoryDenyWriteExecute (the kernel's PR_SET_MDWE), and a seccomp filter
        // with the unit's system calls (others fail with EPERM) and address families.
        let directory = try DeployFileReading.temporaryDirectory("sandbox")
        defer { try? FileManager.default.removeItem(at: directory) }
        let sandbox = directory.appendingPathComponent("sandbox")
        try Self.sandboxSource(allowing: allowed, families: families).write(to: directory.appendingPathComponent("sandbox.c"), atomically: true, encoding: .utf8)
        let (compiled, compiler) = try runCommand(URL(fileURLWithPath: "/usr/bin/gcc"), ["-O1", "-o", sandbox.path, sandbox.path + ".c"])
        XCTAssertEqual(compiled, 0, compiler)

        // The example deployment with every part: the admin API, Redis by host name, the ops
        // listener, cells of real demo backends.
        let redis = try RedisProcess()
        defer { redis.stop() }
        let backends = try (0..<3).map { try BackendProcess(name: "cell-\($0)") }
        let example = try ExampleDeployment(in: directory, redisURL: "redis://localhost:\(redis.port)/0", backendPorts: backends.map(\.port))
        let trace = directory.appendingPathComponent("trace")
        let log = directory.appendingPathComponent("gateway.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/strace")
        process.arguments = ["-f", "-qq", "-o", trace.path, "--", sandbox.path, GatewayProcess.binary.path, "serve", "--config", example.settings.path]
        let output = try FileHandle(forWritingTo: log)
        process.standardOutput = output
        process.standardError = output
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() } }
        func logText() -> String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }
        try waitUntilAccepting(port: example.listener, process: process, timeout: 60)

        // A request through every phase (its quota admitted by Redis, found by host name), the
        // ops listener, a reload, a graceful stop.
        let token = try example.mintToken()
        let answer = try request(port: example.listener, "GET", "/v1/ledger/7", headers: [("Authorization", "Bearer \(token)")])
        XCTAssertEqual(answer.status, 200, logText())
        XCTAssertNotNil(answer.header("RateLimit"), "admitted by Redis")
        XCTAssertEqual(try request(port: example.ops, "GET", "/healthz").status, 200)
        let gatewayPID = try Self.childPID(of: process.processIdentifier)
        kill(gatewayPID, SIGHUP)
        XCTAssertTrue(Self.wait(for: "configuration reloaded", in: logText), logText())
        kill(gatewayPID, SIGTERM)
        let deadline = Date().addingTimeInterval(30)
        while process.isRunning, Date() < deadline { usleep(50_000) }
        XCTAssertFalse(process.isRunning)
        XCTAssertEqual(process.terminationStatus, 0, logText())

        let traceText = try String(contentsOf: trace, encoding: .utf8)
        let calls = try Self.systemCalls(in: traceText, after: GatewayProcess.binary.path)
        XCTAssertGreaterThan(calls.count, 1000, "\(traceText.split(separator: "\n").count) lines: \(traceText.prefix(1000))")
        XCTAssertEqual(Set(calls.map(\.name)).subtracting(allowed), [], "system calls the unit's SystemCallFilter refuses (EPERM)")

        // Sockets of other families (glibc's resolver asks for the host's addresses over
        // AF_NETLINK) were refused, and the gateway did without them.
        let sockets = calls.filter { $0.name == "socket" }
        XCTAssertTrue(sockets.contains { $0.arguments.hasPrefix("AF_INET,") }, "\(sockets.map(\.line))")
        for socket in sockets where !families.contains(where: { socket.arguments.hasPrefix($0 + ",") }) {
            XCTAssertTrue(socket.line.contains("= -1 EAFNOSUPPORT"), socket.line)
        }

        // systemd's MemoryDenyWriteExecute filter: no mapping both writable and executable, no
        // protection change to executable.
        let writableCode = calls.filter { call in
            switch call.name {
            case "mmap": return call.arguments.contains("PROT_WRITE") && call.arguments.contains("PROT_EXEC")
            case "mprotect", "pkey_mprotect": return call.arguments.contains("PROT_EXEC")
            case "shmat": return call.arguments.contains("SHM_EXEC")
            default: return false
            }
        }
        XCTAssertEqual(writableCode.map(\.line), [])

        // ProtectSystem=strict here, readOnlyRootFilesystem in Kubernetes: no file is opened for
        // writing at all (not even in /tmp, which the pod does not give it).
        let writes = calls.filter { ($0.name == "openat" || $0.name == "open") && ["O_WRONLY", "O_RDWR", "O_CREAT"].contains(where: $0.arguments.contains) }
        let written = Set(writes.compactMap { call -> String? in
            let parts = call.arguments.split(separator: "\"")
            return parts.count > 1 ? String(parts[1]) : nil
        })
        XCTAssertEqual(written, [])
    }

    /// strace pads short PIDs and splits calls that other threads interrupt; both are read.
    func testTheTraceReaderReadsPaddedPIDsAndResumedCalls() throws {
        let trace = """
            812   execve("/sandbox", ["/sandbox", "/bin/gw"], 0x7ffc /* 3 vars */) = 0
            812   execve("/bin/gw", ["/bin/gw", "serve"], 0x7fff /* 3 vars */) = 0
            812   brk(NULL)                         = 0x55fe09822000
            815   socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE <unfinished ...>
            12345 openat(AT_FDCWD, "/etc/erp-gateway/gateway.yaml", O_RDONLY|O_CLOEXEC) = 7
            815   <... socket resumed>)             = -1 EAFNOSUPPORT (Address family not supported by protocol)
            812   --- SIGHUP {si_signo=SIGHUP, si_code=SI_USER, si_pid=1, si_uid=0} ---
            """
        let calls = try Self.systemCalls(in: trace, after: "/bin/gw")
        XCTAssertEqual(calls.map(\.name), ["execve", "brk", "socket", "openat"])
        XCTAssertTrue(calls[2].line.hasSuffix("= -1 EAFNOSUPPORT (Address family not supported by protocol)"), calls[2].line)
        XCTAssertTrue(calls[2].arguments.hasPrefix("AF_NETLINK,"))
    }

    /// A program that runs its arguments in the sandbox: no new privileges, PR_SET_MDWE
    /// (writable-and-executable memory refused; inherited across execve), and a seccomp filter
    /// that fails every system call but `allowed` with EPERM and a socket of any family but
    /// `families` with EAFNOSUPPORT, as systemd's filters for the unit do (x86-64).
    static func sandboxSource(allowing allowed: Set<String>, families: [String]) throws -> String {
        let header = try String(contentsOfFile: "/usr/include/x86_64-linux-gnu/asm/unistd_64.h", encoding: .utf8)
        let numbers = header.split(separator: "\n").compactMap { line -> Int? in
            let fields = line.split(separator: " ")
            guard fields.count == 3, fields[0] == "#define", fields[1].hasPrefix("__NR_"), allowed.contains(String(fields[1].dropFirst(5))) else { return nil }
            return Int(fields[2])
        }
        XCTAssertGreaterThan(numbers.count, 200)
        let familyChecks = families.enumerated().map { index, family in
            "BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, \(family), \(families.count - index), 0),"
        }
        let allowList = numbers.sorted().map { "BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, \($0), 0, 1), BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW)," }
        return """
            #include <errno.h>
            #include <stddef.h>
            #include <stdio.h>
            #include <unistd.h>
            #include <sys/prctl.h>
            #include <sys/socket.h>
            #include <sys/syscall.h>
            #include <linux/audit.h>
            #include <linux/filter.h>
            #include <linux/seccomp.h>
            #ifndef PR_SET_MDWE
            #define PR_SET_MDWE 65
            #endif
            #ifndef PR_MDWE_REFUSE_EXEC_GAIN
            #define PR_MDWE_REFUSE_EXEC_GAIN 1
            #endif
            int main(int argc, char **argv) {
                struct sock_filter filter[] = {
                    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
                    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                    BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_socket, 0, \(families.count + 2)),
                    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
                    \(familyChecks.joined(separator: "\n        "))
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EAFNOSUPPORT),
                    BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                    \(allowList.joined(separator: "\n        "))
                    BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
                };
                struct sock_fprog program = { .len = sizeof(filter) / sizeof(filter[0]), .filter = filter };
                if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) { perror("PR_SET_NO_NEW_PRIVS"); return 111; }
                if (prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0) { perror("PR_SET_MDWE"); return 111; }
                if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &program) != 0) { perror("PR_SET_SECCOMP"); return 111; }
                execv(argv[1], argv + 1);
                perror("execv");
                return 112;
            }

            """
    }

    struct SystemCall {
        var name: String
        var arguments: String
        var line: String
    }

    /// The system calls of a `strace -f` log from the gateway's own `execve` on (the sandbox's
    /// before it are not the gateway's). A call another thread's line interrupted
    /// (`<unfinished ...>`) is joined with its `<... resumed>` line.
    static func systemCalls(in trace: String, after executable: String) throws -> [SystemCall] {
        let lines = trace.split(separator: "\n").map(String.init)
        let real = URL(fileURLWithPath: executable).resolvingSymlinksInPath().path
        let start = try XCTUnwrap(
            lines.firstIndex { ($0.contains("execve(\"\(executable)\"") || $0.contains("execve(\"\(real)\"")) && $0.hasSuffix("= 0") },
            "no execve of the gateway in the trace"
        )
        var calls: [SystemCall] = []
        var unfinished: [Substring: Int] = [:]
        for line in lines[start...] {
            // "PID name(arguments) = result", "PID name(arguments <unfinished ...>", "PID <... name resumed>rest";
            // strace pads a PID to five characters ("%-5d ").
            let split = line.split(separator: " ", maxSplits: 1)
            guard split.count == 2, Int(split[0]) != nil else { continue }
            let fields = [split[0], split[1].drop { $0 == " " }]
            if fields[1].hasPrefix("<... "), let index = unfinished.removeValue(forKey: fields[0]), let rest = fields[1].range(of: " resumed>") {
                calls[index].line += String(fields[1][rest.upperBound...])
                continue
            }
            guard let parenthesis = fields[1].firstIndex(of: "(") else { continue }
            let name = String(fields[1][..<parenthesis])
            guard !name.isEmpty, name.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" }) else { continue }
            if line.hasSuffix("<unfinished ...>") { unfinished[fields[0]] = calls.count }
            calls.append(SystemCall(name: name, arguments: String(fields[1][fields[1].index(after: parenthesis)...]), line: line))
        }
        return calls
    }

    /// The process strace started (the wrapper, which became the gateway).
    static func childPID(of tracer: Int32) throws -> Int32 {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if let children = try? String(contentsOfFile: "/proc/\(tracer)/task/\(tracer)/children", encoding: .utf8),
               let pid = children.split(separator: " ").first.flatMap({ Int32($0) }) {
                return pid
            }
            usleep(20_000)
        }
        throw XCTSkip("cannot find the traced process of strace \(tracer)")
    }

    static func wait(for text: String, in log: () -> String, timeout: Double = 15) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if log().contains(text) { return true }
            usleep(50_000)
        }
        return false
    }
}

/// deploy/examples as a running deployment: its settings with free ports, a given Redis and
/// given backends, next to a copy of its tree and keys.
struct ExampleDeployment {
    let settings: URL
    let listener: Int
    let admin: Int
    let ops: Int

    init(in directory: URL, redisURL: String, backendPorts: [Int]) throws {
        let examples = DeployFileReading.url("deploy/examples")
        for name in ["tenants.yaml", "keys"] {
            try FileManager.default.copyItem(at: examples.appendingPathComponent(name), to: directory.appendingPathComponent(name))
        }
        (self.listener, self.admin, self.ops) = (try freePort(), try freePort(), try freePort())
        var text = try DeployFilesTests.text("deploy/examples/gateway.yaml")
        let replacements = [
            ("  port: 8080\n", "  port: \(self.listener)\n"),
            ("    port: 8081\n", "    port: \(self.admin)\n"),
            ("  url: redis://127.0.0.1:6379/0\n", "  url: \(redisURL)\n"),
            ("# ops:\n#   address: 127.0.0.1\n#   port: 9090\n", "ops:\n  address: 127.0.0.1\n  port: \(self.ops)\n"),
            ("127.0.0.1:9101", "127.0.0.1:\(backendPorts[0])"),
            ("127.0.0.1:9102", "127.0.0.1:\(backendPorts[1])"),
            ("127.0.0.1:9103", "127.0.0.1:\(backendPorts[2])"),
        ]
        for (old, new) in replacements {
            XCTAssertTrue(text.contains(old), "deploy/examples/gateway.yaml no longer has \(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        self.settings = directory.appendingPathComponent("gateway.yaml")
        try text.write(to: self.settings, atomically: true, encoding: .utf8)
    }

    /// A token of the README's example customer, `contoso-dist`.
    func mintToken() throws -> String {
        let key = self.settings.deletingLastPathComponent().appendingPathComponent("keys/acme-2026-11.private.pem").path
        let (status, output) = try runCommand(GatewayProcess.binary, [
            "token", "mint", "--issuer", "https://id.acme.example", "--kid", "acme-2026-11", "--key", key, "--tenant", "contoso-dist",
        ])
        XCTAssertEqual(status, 0, output)
        return output.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
