import ArgumentParser
import GatewayConfig

#if canImport(Glibc)
import Glibc
#endif

/// The configuration at `path`, or every problem printed to standard error and exit status 2:
/// what every command that reads the settings does with a file it cannot use.
func loadConfigurationOrExit(path: String) throws -> GatewayConfiguration {
    do {
        return try GatewayConfiguration.load(path: path)
    } catch {
        printToStandardError(error.description)
        throw ExitCode(2)
    }
}

func printToStandardError(_ text: String) {
    let line = text + "\n"
    _ = line.utf8CString.withUnsafeBufferPointer { buffer in
        write(2, buffer.baseAddress, buffer.count - 1)
    }
}
