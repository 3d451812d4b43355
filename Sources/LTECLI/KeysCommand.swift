import ArgumentParser
import Foundation
import LTEBase
import LTECluster

/// `lte keys`: the run's worker identities (open membership, `KeyStore`).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage the worker identities a run admits (Ed25519 keys in RUN/keys).",
        discussion: """
            Once RUN/keys holds a key, `lte server --run RUN` admits only workers that sign with one of them \
            (`lte worker --key RUN/keys/NAME.key`), binds each head to the worker it gave it to, and refuses \
            a revoked worker from its next message on.

            Examples:
              lte keys add --run runs/dist alice        # writes runs/dist/keys/alice.pub and alice.key (give alice.key to the worker)
              lte keys revoke --run runs/dist alice     # the server refuses alice's next message and hands her heads on
              lte keys list --run runs/dist
            """,
        subcommands: [Add.self, Revoke.self, List.self])

    struct RunOption: ParsableArguments {
        @Option(name: .customLong("run"), help: ArgumentHelp("Run directory (its keys live in RUN/keys).", valueName: "dir")) var run: String
        var store: KeyStore { KeyStore(directory: KeyStore.location(inRun: URL(fileURLWithPath: run))) }
    }

    struct Add: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make a new worker identity: RUN/keys/NAME.pub, and NAME.key for the worker.")
        @OptionGroup var location: RunOption
        @Argument(help: "The worker's name (its name in the history and logs too).") var name: String
        func run() throws {
            let store = location.store
            try store.add(name)
            say("keys: added \(name): \(store.publicKeyURL(name).path); give the worker \(store.privateKeyURL(name).path) (lte worker --key FILE) and delete it here")
        }
    }

    struct Revoke: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke a worker identity: refused from its next message, its heads handed on.")
        @OptionGroup var location: RunOption
        @Argument(help: "The worker's name.") var name: String
        func run() throws {
            try location.store.revoke(name)
            say("keys: revoked \(name)")
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the run's identities.")
        @OptionGroup var location: RunOption
        func run() throws {
            let store = location.store
            for name in try store.names() { print("\(name)\(store.isRevoked(name) ? " revoked" : "")") }
        }
    }
}
