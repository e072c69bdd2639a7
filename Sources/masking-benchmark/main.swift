// CPU cost of masking one JSON response (bench/masking.sh): the gateway's one-pass masker
// (`JSONMasker`: locate the masked values, copy the rest as it came) against Foundation's
// `JSONSerialization` (parse into objects, replace, serialize again), for employee lists of a
// few sizes, with a pointer rule (`/employees/*/salary`) and a field-name rule (`iban`).
//
// Usage: masking-benchmark [SECONDS_PER_CASE]
// Prints, per body size: CPU microseconds per document (= per masked request) and per KiB.

import Foundation
import JSONMasking

let secondsPerCase = CommandLine.arguments.count >= 2 ? Double(CommandLine.arguments[1]) ?? 1 : 1

/// An employee list of about `bytes` bytes: nested objects, arrays, numbers, escapes.
func document(bytes: Int) -> [UInt8] {
    var text = #"{"company":"Contoso \"Distribution\"","employees":["#
    var index = 0
    while text.utf8.count < bytes - 200 {
        if index > 0 { text += "," }
        text += #"{"id":\#(index),"name":"Employee \#(index)","salary":\#(40000 + index * 13).50,"active":true,"#
        text += #""bank":{"iban":"DE89370400440532013\#(index % 1000)","bic":"COBADEFFXXX"},"tags":["a","b"],"manager":null}"#
        index += 1
    }
    text += "]}"
    return Array(text.utf8)
}

/// Thread CPU time in nanoseconds.
func cpuNanoseconds() -> UInt64 {
    var spec = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &spec)
    return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
}

/// Mean CPU nanoseconds per call of `body`, run for about `secondsPerCase` after a warm-up.
func measure(_ body: () -> Int) -> Double {
    var sink = 0
    for _ in 0..<3 { sink &+= body() }
    // Reading the thread's CPU clock is a system call: read it once per batch of calls.
    var calls = 0
    var batch = 1
    let start = cpuNanoseconds()
    let budget = UInt64(secondsPerCase * 1e9)
    while cpuNanoseconds() - start < budget {
        for _ in 0..<batch { sink &+= body() }
        calls += batch
        batch = min(batch * 2, 1024)
    }
    let elapsed = Double(cpuNanoseconds() - start)
    if sink == -1 { print("") }  // keeps the work observable
    return elapsed / Double(calls)
}

/// Foundation's way: parse, replace in the object graph, serialize.
func foundationMasked(_ data: Data) -> Int {
    func walk(_ value: Any, path: [String]) -> Any {
        if let object = value as? [String: Any] {
            var out: [String: Any] = [:]
            for (key, member) in object {
                let masked = key == "iban" || (path.count == 2 && path[0] == "employees" && key == "salary")
                out[key] = masked ? (member is String ? "***" : NSNull()) : walk(member, path: path + [key])
            }
            return out
        }
        if let array = value as? [Any] { return array.map { walk($0, path: path + ["*"]) } }
        return value
    }
    let object = try! JSONSerialization.jsonObject(with: data)
    return try! JSONSerialization.data(withJSONObject: walk(object, path: [])).count
}

let mask = try FieldMask(names: ["iban"], pointers: ["/employees/*/salary"], passesNonJSON: false)
let validateOnly = try FieldMask(names: [], pointers: [], passesNonJSON: false)

print("body      masker µs/doc  masker ns/KiB  check-only ns/KiB  Foundation µs/doc  Foundation ns/KiB  masked values")
for size in [1 << 10, 16 << 10, 256 << 10, 1 << 20] {
    let body = document(bytes: size)
    let kib = Double(body.count) / 1024
    let (_, count) = try JSONMasker.masked(body, mask: mask)
    let masker = measure { try! JSONMasker.masked(body, mask: mask).bytes.count }
    let checkOnly = measure { try! body.withUnsafeBytes { try JSONMasker.replacements(in: $0, mask: validateOnly).count } }
    let data = Data(body)
    let foundation = measure { foundationMasked(data) }
    print(
        String(
            format: "%4d KiB  %13.1f  %13.0f  %17.0f  %17.1f  %17.0f  %13d", Int(kib.rounded()), masker / 1000, masker / kib, checkOnly / kib,
            foundation / 1000, foundation / kib, count
        )
    )
}
