import Foundation
import NIOCore
import Synchronization
import XCTest
@testable import RedisClient

struct TimedOut: Error, CustomStringConvertible {
    let description: String
}

/// The future's result, waiting at most `seconds` — a bug must fail the test, not hang the suite.
func result<Value: Sendable>(of future: EventLoopFuture<Value>, within seconds: Double = 10, _ what: String = "future") throws -> Result<Value, any Error> {
    let outcome = Mutex<Result<Value, any Error>?>(nil)
    let done = DispatchSemaphore(value: 0)
    future.whenComplete { result in
        outcome.withLock { $0 = result }
        done.signal()
    }
    guard done.wait(timeout: .now() + seconds) == .success else {
        throw TimedOut(description: "\(what) did not complete within \(seconds) s")
    }
    return outcome.withLock { $0! }
}

/// The future's value, waiting at most `seconds`.
func value<Value: Sendable>(of future: EventLoopFuture<Value>, within seconds: Double = 10, _ what: String = "future") throws -> Value {
    try result(of: future, within: seconds, what).get()
}

/// The `RedisClientError` the future failed with; nil (and a test failure) when it succeeded or
/// failed with anything else.
func redisError<Value: Sendable>(of future: EventLoopFuture<Value>, within seconds: Double = 10, file: StaticString = #filePath, line: UInt = #line) throws -> RedisClientError? {
    switch try result(of: future, within: seconds) {
    case .success(let value):
        XCTFail("expected a RedisClientError, got \(value)", file: file, line: line)
        return nil
    case .failure(let error as RedisClientError):
        return error
    case .failure(let error):
        XCTFail("expected a RedisClientError, got \(error)", file: file, line: line)
        return nil
    }
}

/// Polls `condition` every 20 ms for at most `seconds` (integration tests only).
func eventually(within seconds: Double = 10, _ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Date().addingTimeInterval(seconds)
    while Date() < deadline {
        if try condition() { return }
        usleep(20_000)
    }
    throw TimedOut(description: "\(what) did not happen within \(seconds) s")
}

/// Things callbacks saw, read by the test thread.
final class Recorder<Element: Sendable>: Sendable {
    private let elements = Mutex<[Element]>([])

    func append(_ element: Element) {
        self.elements.withLock { $0.append(element) }
    }

    var all: [Element] { self.elements.withLock { $0 } }
    var count: Int { self.elements.withLock { $0.count } }
}

extension RESPValue {
    static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }
}
