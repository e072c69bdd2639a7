import ArgumentParser
import Foundation
import GatewayConfig
import Hierarchy
import NIOPosix
import Quotas
import RedisClient

/// `erp-gateway usage`: a customer's metered usage per UTC day, from the shared store.
struct Usage: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Print a customer's usage per day (requests, cost units, refusals).")

    @Option(name: .long, help: "Path of the settings file (for redis and the tenant tree).") var config: String
    @Option(help: "The customer id.") var tenant: String
    @Option(help: "First day, YYYY-MM-DD (UTC).") var from: String
    @Option(help: "Last day, YYYY-MM-DD (UTC), at most 400 days after --from.") var to: String
    @Option(help: "table or json.") var format: String = "table"

    func run() async throws {
        let configuration = try loadConfigurationOrExit(path: self.config)
        guard let redisSettings = configuration.settings.redis else { throw ValidationError("\(self.config) configures no redis: usage lives there") }
        let tenants = await Administration.servedTree(configuration, settingsPath: self.config)
        guard let id = try? NodeID(self.tenant), let policy = tenants?.customer(id) else {
            throw ValidationError("no customer '\(self.tenant)' in the tenant tree")
        }
        guard let first = Self.day(self.from), let last = Self.day(self.to), first <= last, last - first <= 400 else {
            throw ValidationError("--from and --to are YYYY-MM-DD, in order, at most 400 days apart")
        }
        guard ["table", "json"].contains(self.format) else { throw ValidationError("--format is table or json") }
        let stamps = (first...last).map { UTCCalendarPeriod(now: $0 * 86_400_000_000).dayStamp }

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let client = RedisClient(url: try redisSettings.clientURL(), group: group)
        let meter = UsageMeter(redis: client, prefix: redisSettings.keyPrefix)
        let days: [UsageMeter.Day]
        do {
            days = try await meter.read(oem: policy.path.oem, customer: id, days: stamps, on: group.next()).get()
        } catch {
            try? await client.shutdown().get()
            try? await group.shutdownGracefully()
            printToStandardError("cannot read usage: \(error)")
            throw ExitCode(1)
        }
        try? await client.shutdown().get()
        try? await group.shutdownGracefully()

        if self.format == "json" {
            let rows = days.map { "{\"day\":\"\(Self.iso($0.day))\",\"requests\":\($0.requests),\"cost\":\($0.cost),\"refused\":\($0.refused)}" }
            print("{\"tenant\":\"\(id)\",\"path\":\"\(policy.path)\",\"days\":[\(rows.joined(separator: ","))]}")
            return
        }
        print("usage of \(policy.path) (UTC days)")
        print("day          requests        cost     refused")
        for day in days {
            print(Self.iso(day.day) + "  " + Self.column(day.requests) + Self.column(day.cost) + Self.column(day.refused))
        }
        print("total        " + Self.column(days.map(\.requests).reduce(0, +)).dropFirst(1) + Self.column(days.map(\.cost).reduce(0, +))
            + Self.column(days.map(\.refused).reduce(0, +)))
    }

    /// Days since the epoch for YYYY-MM-DD.
    static func day(_ text: String) -> Int64? {
        let parts = text.split(separator: "-").map { Int($0) }
        guard parts.count == 3, let year = parts[0], let month = parts[1], let day = parts[2], (1...12).contains(month), (1...31).contains(day) else { return nil }
        var components = DateComponents()
        (components.year, components.month, components.day) = (year, month, day)
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        guard let date = calendar.date(from: components), calendar.component(.day, from: date) == day else { return nil }
        return Int64(date.timeIntervalSince1970) / 86_400
    }

    static func iso(_ stamp: String) -> String {
        let chars = Array(stamp)
        return String(chars[0..<4]) + "-" + String(chars[4..<6]) + "-" + String(chars[6..<8])
    }

    static func column(_ value: Int) -> String {
        let text = String(value)
        return String(repeating: " ", count: max(1, 12 - text.count)) + text
    }
}
