import XCTest

final class LTEClusterTestsPlaceholder: XCTestCase {}
