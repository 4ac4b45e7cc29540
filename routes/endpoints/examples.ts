/**
 * OpenAPI examples of the endpoints and e-mail-addresses operations (validated against their
 * schemas by tests/openapi/openapi_examples_test.ts). The secret shown is well-formed but was
 * never issued by any server.
 */
import type { OperationExamples } from "../openapi/examples.ts";

const NOW = "2026-03-14T09:26:53.000Z";
const LATER = "2026-03-14T09:31:07.000Z";
const USER_ID = "usr_5Qx8kP2mVt7nLr4WcZa9Hd";
const DOMAIN_ID = "dom_3Fh7Kq9Ls2Nd8Vx4Bc6Mp1";
const ENDPOINT_ID = "ep_6Lm2Qr8Tx4Vb1Nz7Kc3Wd9";
const ADDRESS_ID = "ea_2Hs9Jd4Kf7Lq1Mw8Nx3Pz5";
const SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

const webhookConfig = {
  url: "https://hooks.example.com/inbound",
  headers: { "X-Receiver-Token": "rcv_4d9f2a" },
  timeout: 30,
  retryAttempts: 3,
};

const endpoint = {
  id: ENDPOINT_ID,
  config: webhookConfig,
  createdAt: NOW,
  description: "Support inbox to the helpdesk",
  groupEmails: null,
  isActive: true,
  name: "Helpdesk webhook",
  type: "webhook",
  updatedAt: NOW,
  userId: USER_ID,
  webhookFormat: "inbound",
};

const stats = { failed: 0, lastDelivery: LATER, successful: 1, total: 1 };

const testPayload = {
  event: "email.received",
  timestamp: LATER,
  test: true,
  endpoint: { id: ENDPOINT_ID, name: "Helpdesk webhook", type: "webhook" },
};

export const endpointExamples: Record<string, OperationExamples> = {
  listEndpoints: {
    params: {
      limit: 10,
      offset: 0,
      type: "webhook",
      active: "true",
      search: "help",
      sortBy: "newest",
    },
    responses: {
      200: {
        data: [{
          ...endpoint,
          config: { ...webhookConfig, headers: { "X-Receiver-Token": "********" } },
          deliveryStats: stats,
        }],
        pagination: { limit: 50, offset: 0, total: 1, hasMore: false },
      },
    },
  },
  createEndpoint: {
    request: {
      name: "Helpdesk webhook",
      type: "webhook",
      description: "Support inbox to the helpdesk",
      config: webhookConfig,
    },
    responses: {
      201: {
        ...endpoint,
        deliveryStats: { failed: 0, lastDelivery: null, successful: 0, total: 0 },
        secret: SECRET,
      },
    },
  },
  retrieveEndpoint: {
    params: { id: ENDPOINT_ID },
    responses: {
      200: {
        ...endpoint,
        associatedEmails: [{
          id: ADDRESS_ID,
          address: "support@example.com",
          createdAt: NOW,
          isActive: true,
        }],
        catchAllDomains: [{ id: DOMAIN_ID, domain: "example.com", status: "verified" }],
        deliveryStats: stats,
        recentDeliveries: [{
          id: "dlv_8Pq3Rs6Tu9Vw2Xy5Za1Bc4",
          attempts: 1,
          createdAt: LATER,
          deliveryType: "webhook",
          emailId: null,
          lastAttemptAt: LATER,
          responseData: { test: true, statusCode: 200, responseTime: 84, error: null },
          status: "success",
        }],
      },
    },
  },
  updateEndpoint: {
    params: { id: ENDPOINT_ID },
    request: { name: "Helpdesk webhook (EU)", isActive: true },
    responses: { 200: { ...endpoint, name: "Helpdesk webhook (EU)", updatedAt: LATER } },
  },
  deleteEndpoint: {
    params: { id: ENDPOINT_ID },
    responses: {
      200: {
        message: "Endpoint Helpdesk webhook deleted.",
        cleanup: {
          deliveriesDeleted: 1,
          domains: ["example.com"],
          domainsUpdated: 1,
          emailAddresses: ["support@example.com"],
          emailAddressesUpdated: 1,
          groupEmailsDeleted: 0,
        },
      },
    },
  },
  testEndpoint: {
    params: { id: ENDPOINT_ID },
    request: { webhookFormat: "inbound" },
    responses: {
      200: {
        success: true,
        statusCode: 200,
        responseTime: 84,
        responseBody: '{"ok":true}',
        message: "Test delivered: HTTP 200 in 84 ms.",
        urlTested: webhookConfig.url,
        webhookFormat: "inbound",
        testPayload,
      },
    },
  },
  rollEndpointSecret: {
    params: { id: ENDPOINT_ID },
    responses: {
      200: {
        id: ENDPOINT_ID,
        secret: SECRET,
        message: "New signing secret issued; it is shown this once. The old one no longer signs.",
      },
    },
  },
};

const address = {
  id: ADDRESS_ID,
  address: "support@example.com",
  createdAt: NOW,
  domain: { id: DOMAIN_ID, name: "example.com", status: "verified" },
  domainId: DOMAIN_ID,
  endpointId: ENDPOINT_ID,
  isActive: true,
  isReceiptRuleConfigured: true,
  receiptRuleName: null,
  routing: { id: ENDPOINT_ID, isActive: true, name: "Helpdesk webhook", type: "endpoint" },
  updatedAt: NOW,
  userId: USER_ID,
  webhookId: null,
};

export const emailAddressExamples: Record<string, OperationExamples> = {
  listEmailAddresses: {
    params: {
      limit: 10,
      offset: 0,
      domainId: DOMAIN_ID,
      isActive: "true",
      isReceiptRuleConfigured: "true",
    },
    responses: {
      200: { data: [address], pagination: { limit: 50, offset: 0, total: 1, hasMore: false } },
    },
  },
  createEmailAddress: {
    request: { address: "support@example.com", domainId: DOMAIN_ID, endpointId: ENDPOINT_ID },
    responses: { 201: address },
  },
  retrieveEmailAddress: { params: { id: ADDRESS_ID }, responses: { 200: address } },
  updateEmailAddress: {
    params: { id: ADDRESS_ID },
    request: { endpointId: null, isActive: false },
    responses: {
      200: {
        ...address,
        endpointId: null,
        isActive: false,
        isReceiptRuleConfigured: false,
        routing: { id: null, isActive: false, name: null, type: "none" },
        updatedAt: LATER,
      },
    },
  },
  deleteEmailAddress: {
    params: { id: ADDRESS_ID },
    responses: {
      200: {
        message: "Email address support@example.com deleted.",
        cleanup: {
          domain: "example.com",
          emailAddress: "support@example.com",
          sesRuleUpdated: false,
        },
      },
    },
  },
};
