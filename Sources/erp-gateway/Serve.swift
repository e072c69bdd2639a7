import ArgumentParser
import Dispatch
import GatewayConfig
import Logging
import NIOCore
import NIOPosix
import ProxyEngine

#if canImport(Glibc)
import Glibc
#endif

/// `erp-gateway serve`: loads the settings, starts the listener, and on SIGTERM or SIGINT stops
/// accepting, lets in-flight requests finish within the grace period and exits 0.
struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the gateway.")

    @Option(name: .long, help: "Path of the settings file (YAML).")
    var config: String

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func run() async throws {
        let level = self.logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "erp-gateway")

        let settings: GatewaySettings
        do {
            settings = try SettingsLoader.load(path: self.config)
        } catch {
            printToStandardError(error.description)
            throw ExitCode(2)
        }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: settings.listener.eventLoops ?? System.coreCount)
        let server: GatewayServer
        do {
            server = try await GatewayServer.start(settings: settings, group: group, logger: logger)
        } catch {
            logger.critical("cannot start the listener", metadata: ["address": "\(settings.listener.address):\(settings.listener.port)", "error": "\(error)"])
            try? await group.shutdownGracefully()
            throw ExitCode(1)
        }
        logger.notice("listening", metadata: ["address": "\(server.localAddress.map { "\($0)" } ?? "?")", "cell": "\(settings.defaultCell)"])

        let signal = await ShutdownSignal.wait()
        logger.notice("shutting down", metadata: ["signal": "\(signal)", "grace-ms": "\(settings.timeouts.shutdownGrace.milliseconds)"])
        await server.shutdown(grace: settings.timeouts.shutdownGrace)
        try? await group.shutdownGracefully()
        logger.notice("stopped")
    }
}

/// Waits for SIGTERM or SIGINT. The default handlers are replaced so the process can drain
/// instead of dying mid-response.
enum ShutdownSignal {
    static func wait() async -> String {
        await withCheckedContinuation { continuation in
            let queue = DispatchQueue(label: "erp-gateway.signals")
            let once = ResumeOnce(continuation)
            var sources: [any DispatchSourceSignal] = []
            for (number, name) in [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")] {
                signal(number, SIG_IGN)
                let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
                source.setEventHandler { once.resume(name) }
                source.resume()
                sources.append(source)
            }
            SignalSources.retain(sources)
        }
    }

    /// Resumes a continuation at most once, whichever signal comes first.
    private final class ResumeOnce: @unchecked Sendable {
        // Only touched on the signal queue, which is serial.
        private var continuation: CheckedContinuation<String, Never>?
        init(_ continuation: CheckedContinuation<String, Never>) { self.continuation = continuation }
        func resume(_ name: String) {
            self.continuation?.resume(returning: name)
            self.continuation = nil
        }
    }

    /// Keeps the signal sources alive for the life of the process.
    private enum SignalSources {
        nonisolated(unsafe) static var all: [any DispatchSourceSignal] = []
        static func retain(_ sources: [any DispatchSourceSignal]) { self.all = sources }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
