import ArgumentParser
import Foundation
import LTEBase
import LTENet

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Show a running server's round, the heads in and missing, and their losses.",
        discussion: """
            First line: round R of N | heads in [head:loss …] | missing [heads] | tokens T (| finished); then one line per \
            worker (name, heads, seconds since last seen, tokens/s, wait for its last round) and one for the free heads, \
            with how each starts on its next worker (handed over with its state, or from its last merge).

            Examples:
              lte status tcp://server:5555
              lte status tls+tcp://server:5555 --tls-cert worker.pem --tls-key worker.key --tls-ca ca.pem --secret-file secret
            """)

    @Argument(help: ArgumentHelp("Server address.", valueName: "addr")) var address: String
    @Option(help: "Seconds to wait for an answer.") var timeout: Double = 5
    @OptionGroup var security: SecurityOptions

    func run() throws {
        let codec = try security.codec()
        let tls = try security.tls(for: address)
        let socket: NNGRequestSocket
        do {
            socket = try NNGRequestSocket(dial: address, maxMessageBytes: 1 << 20, sendTimeout: .milliseconds(Int(timeout * 1000)),
                                          receiveTimeout: .milliseconds(Int(timeout * 1000)), tls: tls)
        } catch let e as NNGError { throw LTEError("cannot dial \(address): \(e.reason)") }
        defer { socket.close() }
        let reply: WireMessage
        do { reply = try codec.decode(try socket.request(try codec.encode(.statusRequest))) } catch let e as NNGError {
            // The request only timed out; a few one-off dials tell why (a refused certificate, nothing listening …).
            if let finding = ConnectionDiagnosis.diagnose(address, tls: tls, timeout: .milliseconds(Int(max(1, timeout) * 1000))) {
                throw LTEError("cannot reach the server at \(address): \(finding.reason)")
            }
            throw LTEError("no answer from \(address) within \(timeout) s (\(e.reason)); is `lte server` running there?")
        } catch let e as WireError {
            // Most often a secret on one side only, or two different ones: the answer's MAC cannot be checked.
            throw LTEError("cannot read the answer from \(address) (\(e.message)); if the run has a shared secret, pass the same --secret-file")
        }
        if case .error(let e) = reply {
            let hint = e.code == .unauthorized ? "; if the run has a shared secret, pass the same --secret-file" : ""
            throw LTEError("the server at \(address) refused the status request: \(e.message)\(hint)")
        }
        guard case .status(let s) = reply else { throw LTEError("the server answered with \(reply.type)") }
        let losses = zip(s.headsIn, s.lossesIn).map { String(format: "%d:%.4f", $0, $1) }.joined(separator: " ")
        // The last round as its workers lived it: longest local training, longest wait for a merge.
        let workers = s.fields["worker_train_ms"].map { " | worker train \($0) ms, wait \(s.fields["worker_wait_ms"] ?? "?") ms" } ?? ""
        print("round \(s.round)\(s.fields["rounds"].map { " of \($0)" } ?? "") | heads in [\(losses)] | missing \(s.headsMissing) | tokens \(s.fields["tokens"] ?? "?")\(workers)\(s.fields["finished"] == "true" ? " | finished" : "")")
        // Open membership: the workers and the free heads (servers before wire version 3 send neither).
        for key in s.fields.keys.sorted() where key.hasPrefix("worker.") {
            print("worker \(key.dropFirst("worker.".count)): \(s.fields[key]!)")
        }
        if let free = s.fields["free_heads"] {
            let details = s.fields.keys.filter { $0.hasPrefix("free.") }.sorted { Int($0.dropFirst(5)) ?? 0 < Int($1.dropFirst(5)) ?? 0 }
                .map { "head \($0.dropFirst(5)): \(s.fields[$0]!)" }
            print("free heads: [\(free)]" + (details.isEmpty ? "" : " | " + details.joined(separator: " | ")))
        }
    }
}
