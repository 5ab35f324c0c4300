import { GraphQLError, type ASTVisitor, type ValidationContext } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * A request carries one file, and a file's stream can be read once: a second uploadFile on it
 * failed after the first had stored a file whose id the client never learnt. Refused before
 * anything runs.
 */
function oneUploadPerDocument(context: ValidationContext): ASTVisitor {
  let uploads = 0;
  return {
    Field(node) {
      if (node.name.value !== 'uploadFile' || ++uploads !== 2) return;
      context.reportError(
        new GraphQLError('Upload one file per request: uploadFile may appear once in a document.', {
          nodes: [node],
          extensions: { code: 'BAD_USER_INPUT' },
        }),
      );
    },
  };
}

export function useOneUploadPerDocument(): Plugin {
  return {
    onValidate({ addValidationRule }) {
      addValidationRule(oneUploadPerDocument);
    },
  };
}
